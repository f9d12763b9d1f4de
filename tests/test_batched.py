"""The batched engine: determinism, the forced score line, shared-prefix KV copies, scheduling."""

from __future__ import annotations

import numpy as np
import pytest

from grm_cli.core.prompt import load_template, render
from grm_cli.core.records import record_from_dict
from grm_cli.engine.base import ContextOverflow, GenerationRequest
from grm_cli.engine.batched import ROOT_SEQ, BatchedLlamaEngine
from grm_cli.errors import ModelError
from grm_cli.scoring.pipeline import score_many
from grm_cli.scoring.plan import forced_tail
from grm_cli.scoring.settings import ScoreSettings

POINTWISE = load_template("pointwise")


def records(n_records: int, n_responses: int):
    return [
        (record_from_dict({"id": f"r{i}", "prompt": f"Add {i} and 3.", "responses": [f"answer {j}: {i + j}" for j in range(n_responses)]}), None)
        for i in range(n_records)
    ]


@pytest.fixture(scope="module")
def batched(tiny_model):
    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9, kv_cells=32768)
    yield engine
    engine.close()


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_forced_tail_always_gives_n_in_range_integers(batched, n):
    results = score_many(records(3, n), batched, POINTWISE, ScoreSettings(k=4, seed=n, max_tokens=16))
    for r in results:
        assert r.verdict.unparsed == 0 and r.verdict.votes == 4
        for s in r.samples:
            assert s.judgment.error is None and s.forced_tail
            assert len(s.scores) == n and all(1 <= x <= 10 for x in s.scores)
            assert s.judgment.text.rstrip().endswith("}")


def test_same_seed_same_outputs_run_after_run(batched, tiny_model):
    settings = ScoreSettings(k=4, seed=5, max_tokens=24)
    a = score_many(records(3, 2), batched, POINTWISE, settings)
    b = score_many(records(3, 2), batched, POINTWISE, settings)
    other = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9, kv_cells=32768)
    c = score_many(records(3, 2), other, POINTWISE, settings)
    other.close()
    texts = lambda rs: [s.judgment.text for r in rs for s in r.samples]  # noqa: E731
    assert texts(a) == texts(b) == texts(c)
    assert batched.ledger.kept == []  # no request asked for its prompt to be kept: every call starts alike


def test_kept_prompts_start_their_samples_as_the_first_time(tiny_model):
    """Requests that ask for their prompt to be kept (adaptive rounds): the next call with the same
    prompts decodes none of them, and samples each first token from the stored logits, so that token is
    the one a fresh engine draws; later tokens may differ in the last bits (the cache's layout differs, as
    between --parallel settings), and every sample still parses."""
    from dataclasses import replace

    one = [replace(r, keep_prompt=True) for r in _requests(3, 4, 1, temperature=1.0)]
    long = [replace(r, max_tokens=24) for r in one]
    fresh, warm = (BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9) for _ in range(2))
    first = [g.text for g in fresh.generate_many(one)]
    warm.generate_many(long)
    evaluated = warm.stats.prompt_evaluated
    assert len(warm.ledger.kept) == len({tuple(warm.model.tokens(r.messages, r.assistant_prefix)) for r in one})
    again = [g.text for g in warm.generate_many(one)]
    assert warm.stats.prompt_evaluated == evaluated  # every prompt was kept: nothing decoded again
    assert again == first and len(set(first)) > 1
    gens = warm.generate_many(long)
    assert all(g.forced_tail or g.finish_reason == "answer" for g in gens)
    for e in (fresh, warm):
        e.close()


def test_stored_logits_sample_as_llama_cpp_does(batched):
    """A kept prompt's first tokens come from its stored logits through the same sampler chain: the
    token llama_sampler_sample picks from the live logits, seed for seed, with and without the grammar."""
    from grm_cli.native import SamplerChain

    ctx = batched.ctx
    tokens = batched.model.tokens([{"role": "user", "content": "Rate these two answers."}])
    ctx.seq_rm(1)
    idx = batched._decode_chunks(1, tokens, 0, want_last=True)
    stored = ctx.logits(idx).copy()
    grammar = forced_tail(POINTWISE, 2).grammar
    picked = []
    for seed in range(12):
        for temperature, g in ((1.0, None), (0.7, grammar), (0.0, None)):
            live, kept = (SamplerChain(batched.model.native, temperature, seed, g) for _ in range(2))
            want = live.sample(ctx, idx)
            assert kept.sample_logits(stored) == want
            picked.append(want)
            live.close()
            kept.close()
    ctx.seq_rm(1)
    assert len(set(picked)) > 3  # the seeds and chains differ, so the comparison can fail


@pytest.mark.slow
def test_batch_size_one_and_eight(tiny_model):
    """llama.cpp's arithmetic differs across batch shapes, so later tokens may differ (measured in README);
    what must hold: each size is deterministic, every sample parses, and the first sampled token, drawn
    from the prompt's own logits, is the same."""
    settings = ScoreSettings(k=8, seed=2, max_tokens=12, temperature=0.0)
    # one token, sampled at temperature 1 with each sample's own seed: the text is the pre-fill + that token
    one_token = ScoreSettings(k=8, seed=2, max_tokens=1, temperature=1.0, force_scores=False)
    prefix = render(POINTWISE, records(1, 2)[0][0], (0, 1)).assistant_prefix
    first = {}
    for parallel in (1, 8):
        engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=parallel + 1, kv_cells=32768)
        runs = [score_many(records(2, 2), engine, POINTWISE, settings) for _ in range(2)]
        first[parallel] = [generated(s.judgment.text, prefix) for r in score_many(records(2, 2), engine, POINTWISE, one_token) for s in r.samples]
        engine.close()
        assert [s.judgment.text for r in runs[0] for s in r.samples] == [s.judgment.text for r in runs[1] for s in r.samples]
        assert all(s.scores is not None for r in runs[0] for s in r.samples)
        assert len(first[parallel]) == 16 and all(first[parallel])
    assert len(set(first[1])) > 1  # the seeds pick different tokens, so the comparison below can fail
    assert first[1] == first[8]


def generated(text: str, prefix: str) -> str:
    """What the model sampled: the sample's text after the assistant pre-fill."""
    assert text.startswith(prefix), text
    return text[len(prefix):]


def test_copied_kv_gives_the_same_next_token_distribution(batched):
    """Decode a prompt alone in one sequence; decode all but its last token in another, copy that cache to
    a third and decode the last token there: both next-token distributions agree."""
    ctx = batched.ctx
    tokens = batched.model.tokens([{"role": "user", "content": "Which is larger, 7 or 9? Explain."}])
    for seq in (1, 2, 3):
        ctx.seq_rm(seq)

    def logits(idx):
        return ctx.logits(idx).copy()

    alone = logits(batched._decode_chunks(1, tokens, 0, want_last=True))
    batched._decode_chunks(2, tokens[:-1], 0, want_last=False)
    ctx.seq_cp(2, 3)
    copied = logits(batched._decode_chunks(3, tokens[-1:], len(tokens) - 1, want_last=True))
    for seq in (1, 2, 3):
        ctx.seq_rm(seq)
    p = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()  # noqa: E731
    assert np.allclose(p(alone), p(copied), atol=1e-4)
    assert int(alone.argmax()) == int(copied.argmax())


def test_few_kv_cells_make_requests_wait_not_fail(tiny_model):
    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=17, kv_cells=4096)
    results = score_many(records(4, 2), engine, POINTWISE, ScoreSettings(k=4, max_tokens=8))
    assert all(r.verdict.votes == 4 for r in results)
    tail = forced_tail(POINTWISE, 2)
    huge = GenerationRequest([{"role": "user", "content": "x"}], max_tokens=6000, temperature=0.0, tail=tail)
    with pytest.raises(ModelError, match="KV cells"):
        engine.generate_many([huge])
    engine.close()


def test_stop_strings_and_the_root_prefix(batched):
    req = GenerationRequest([{"role": "user", "content": "Say something."}], max_tokens=40, temperature=0.7, seed=3, stop=("e",))
    gens = batched.generate_many([req] * 3)
    for g in gens:
        assert "e" not in g.text and not g.forced_tail
    assert gens[0].text == gens[1].text == gens[2].text  # same seed, same prompt
    # the prefix the prompts share is decoded once into sequence ROOT_SEQ and held there for the next call
    root = batched.ledger.root
    assert len(root) >= 16 and batched.model.tokens(req.messages)[:len(root)] == root
    assert batched.ctx.seq_span(ROOT_SEQ) == (0, len(root) - 1)


def _first_wave_cells(engine, requests):
    """The rule, spelled out from the requests: the call's shared root once, each distinct prompt's tokens
    past what it shares (the root, or the same record's previous order), each sample's own budget."""
    from grm_cli.engine.base import budget
    from grm_cli.engine.kvplan import WaveGroup, round_cells, wave_cells

    prompts = [engine.model.tokens(r.messages, r.assistant_prefix) for r in requests]
    groups: dict[tuple, list[int]] = {}
    for r, p in zip(requests, prompts):
        groups.setdefault(tuple(p), []).append(budget(r))
    root = prompts[0]
    for p in prompts[1:]:
        root = root[: next((i for i, (a, b) in enumerate(zip(root, p)) if a != b), min(len(root), len(p)))]
    return round_cells(wave_cells([WaveGroup(list(t), b) for t, b in groups.items()], root if len(root) >= 16 else []))


def _requests(n_records: int, k: int, max_tokens: int, temperature: float = 0.7):
    from grm_cli.core.sampling import response_order, sample_seed

    out = []
    for rec, _ in records(n_records, 2):
        for s in range(k):
            seed = sample_seed(0, rec.id, s)
            p = render(POINTWISE, rec, response_order(2, seed))
            out.append(GenerationRequest(p.messages, p.assistant_prefix, max_tokens, temperature, seed, tail=forced_tail(POINTWISE, 2)))
    return out


def test_the_cache_is_sized_to_the_work_and_grows_with_it(tiny_model):
    """No fixed multiple of --ctx: the first call allocates what its first wave holds (k samples sharing
    each record's prompts), counted by the same rule `grm doctor` and `--n-gpu-layers auto` use; a call
    with more work grows the cache, and a request that cannot fit --ctx is refused before any allocation."""
    from grm_cli.engine.kvplan import planned_cells

    asked = []
    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9, fit_layers=lambda cells: asked.append(cells) or 0)
    assert engine.kv_cells == 0 and engine.ctx is None
    huge = GenerationRequest([{"role": "user", "content": "x"}], max_tokens=9000)
    with pytest.raises(ContextOverflow):
        engine.generate_many([huge])
    assert engine.ctx is None and asked == []
    small = _requests(1, 4, 8)
    gens = engine.generate_many(small)
    assert all(g.completion_tokens > 0 for g in gens)
    assert engine.kv_cells == _first_wave_cells(engine, small) < 4 * engine.n_ctx
    assert asked == [engine.kv_cells]  # --n-gpu-layers auto fitted exactly what was allocated
    from grm_cli.engine.base import budget

    assert engine.kv_cells <= planned_cells(engine.n_ctx, 8, samples=4, new_tokens=budget(small[0]))  # doctor's count bounds it
    first = engine.kv_cells
    bigger = _requests(2, 4, 8)  # two records in flight
    assert len(engine.generate_many(bigger)) == 8
    assert engine.kv_cells == _first_wave_cells(engine, bigger) > first
    assert len(engine.generate_many(small)) == 4 and engine.kv_cells == _first_wave_cells(engine, bigger)  # no shrinking back and forth
    engine.close()


def test_a_records_orders_share_its_query_and_sample_as_if_alone(tiny_model):
    """Two-level prefix: the second response order of a record copies the first order's prompt up to
    where they differ (the query is evaluated once per record, not once per order); the copied cells give
    the same first token as evaluating each prompt on its own."""
    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9)
    reqs = [r for r in _requests(2, 4, 1, temperature=1.0)]
    reqs = [GenerationRequest(r.messages, r.assistant_prefix, 1, 1.0, r.seed) for r in reqs]
    prompts = [engine.model.tokens(r.messages, r.assistant_prefix) for r in reqs]
    distinct = list(dict.fromkeys(map(tuple, prompts)))
    assert len(distinct) == 4  # 2 records x 2 orders
    together = [g.text for g in engine.generate_many(reqs)]
    root = len(engine.ledger.root)
    evaluated = engine.stats.prompt_evaluated
    per_order = sum(len(p) - root for p in distinct)
    assert evaluated < root + per_order  # the second order of each record reused more than the root
    alone = [engine.generate_many([r])[0].text for r in reqs]
    assert together == alone
    engine.close()


def test_parallel_is_chosen_from_the_backend_when_not_given():
    from grm_cli.engine.factory import EngineOptions
    from grm_cli.engine.kvplan import CPU_PARALLEL, GPU_PARALLEL
    from grm_cli.engine.llama import gpu_offload_supported

    default = GPU_PARALLEL if gpu_offload_supported() else CPU_PARALLEL
    assert EngineOptions().sequences() == default and EngineOptions().chunk(8) == -(-default // 8)
    assert EngineOptions(n_gpu_layers="0").sequences() == CPU_PARALLEL
    assert EngineOptions(parallel=5).sequences() == 5 and EngineOptions(parallel=5).chunk(2) == 3


def _kept_reservation(engine) -> int:
    """What the kept prompts reserve: each group their lender chains reach, once."""
    seen, total = set(), 0
    for g in engine.ledger.kept:
        while g is not None and id(g) not in seen:
            seen.add(id(g))
            total += g.reserved
            g = g.lender
    return total


def test_kept_prompts_are_reused_dropped_and_evicted_with_the_cells_counted(tiny_model):
    """Between calls the engine keeps finished prompts that asked for it in sequences of their own: a call with the same
    prompts decodes none of them; a call whose prompts share nothing with them drops them first; under a
    small fixed cache they give way instead of making requests wait or fail. After every call the cells the
    scheduler counts equal what the kept prompts reserve, each kept sequence holds exactly its prompt, and
    no more prompts are kept than there are sequences for them."""
    import random

    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=5, kv_cells=6144)
    rng = random.Random(0)
    from dataclasses import replace

    pool = [replace(r, keep_prompt=True) for r in _requests(6, 3, 6)]  # 6 records x 3 samples, in their response orders
    reused, pressed = 0, []
    ledger = engine.ledger  # a fixed cache: made once
    room_for = ledger.room_for

    def counting_room_for(need, lender):
        before = len(ledger.kept)
        ok = room_for(need, lender)
        pressed.append(before - len(ledger.kept))
        return ok

    ledger.room_for = counting_room_for
    last: list = []
    for call in range(15):
        if call % 3 == 2:
            reqs = last  # the previous call again
        else:
            reqs = rng.sample(pool, rng.randint(1, 8))
        before = engine.stats.prompt_evaluated
        gens = engine.generate_many(reqs)
        assert len(gens) == len(reqs) and all(g.completion_tokens > 0 for g in gens)
        if call % 3 == 2:
            reused += engine.stats.prompt_evaluated - before == 0
        assert ledger.held == _kept_reservation(engine)
        assert len(ledger.kept) <= engine.n_keep and len(ledger.root) + ledger.held <= engine.kv_cells
        for g in ledger.kept:
            assert engine.ctx.seq_span(g.kept_id) == (0, len(g.tokens) - 1)
        last = reqs
    assert reused >= 3  # repeated calls found their prompts kept
    assert sum(pressed) > 0  # and the small cache made some give way to new work
    # a call of other prompts drops every kept one that it cannot copy from
    other = GenerationRequest([{"role": "user", "content": "Something else entirely, " * 8}], max_tokens=4, temperature=0.0, keep_prompt=True)
    engine.generate_many([other])
    assert [g.tokens[:8] for g in ledger.kept] == [engine.model.tokens(other.messages)[:8]]
    ledger.forget_kept()
    assert ledger.held == 0 and ledger.kept == [] and len(ledger.keep_ids) == engine.n_keep
    engine.close()


def test_the_kv_rule_counts_held_prompts_as_lenders():
    """Pure arithmetic: a prompt the cache already holds costs a group its last token only; one that
    shares a prefix with it, the rest; a call keeping its prompts needs them all at once plus one wave."""
    from grm_cli.engine.kvplan import WaveGroup, kept_round_cells, wave_cells

    root = list(range(20))
    a, b = root + [100, 101, 102, 103], root + [100, 101, 200, 201, 202]
    waves = [WaveGroup(a, [10, 10]), WaveGroup(b, [10])]
    assert wave_cells(waves, root) == 20 + (4 + 20) + (3 + 10)  # b copies a's [100, 101] (same record, other order)
    assert wave_cells(waves, root, held=[a]) == 20 + (1 + 20) + (3 + 10)
    assert wave_cells(waves, root, held=[a, b]) == 20 + (1 + 20) + (1 + 10)
    assert kept_round_cells([a, b], waves, root) == 20 + 4 + 3 + 30


def test_a_call_that_fails_halfway_leaves_a_clean_cache(tiny_model):
    """A request refused after its prompt was decoded (a bad temperature, found when its sampler is built)
    fails the call; the next call runs, and no sequence but the root holds cells: nothing half admitted
    stays behind uncounted, and no kept prompt survives with a count that may be off."""
    from dataclasses import replace

    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=5)
    good = [replace(r, keep_prompt=True) for r in _requests(2, 2, 4)]
    engine.generate_many(good)
    assert engine.ledger.kept
    bad = replace(good[0], temperature=float("nan"))
    with pytest.raises(ValueError, match="temperature"):
        engine.generate_many([good[1], bad])
    assert engine.ledger.kept == [] and engine.ledger.held == 0
    assert all(engine.ctx.seq_span(seq)[1] == -1 for seq in range(1, engine.n_seq_max + engine.n_keep))
    assert len(engine.generate_many(good)) == len(good) and engine.ledger.held == _kept_reservation(engine)
    engine.close()
