"""Adaptive voting: the exact rule never changes a verdict, the statistical rule keeps its error level on
simulated streams, and live rounds draw exactly the samples a full run would (proven through the cache)."""

from __future__ import annotations

import json
import random

import pytest
from conftest import RecordingEngine, grm
from hypothesis import given, settings
from hypothesis import strategies as st

from grm_cli.core.adaptive import Policy, flip_risk, replay, settled
from grm_cli.core.prompt import load_template
from grm_cli.core.records import record_from_dict
from grm_cli.core.voting import guided_vote, vote
from grm_cli.engine.cache import CachedEngine, SampleCache
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.settings import ScoreSettings


def _verdict(samples, n):
    v = vote(samples, n)
    return v.best, v.is_tie, v.totals is None


@st.composite
def streams(draw):
    n = draw(st.integers(2, 4))
    k = draw(st.integers(2, 16))
    lo, hi = draw(st.sampled_from([(1, 10), (1, 2), (0, 1), (1, 5)]))
    sample = st.one_of(st.none(), st.tuples(*[st.integers(lo, hi)] * n))
    samples = draw(st.lists(sample, min_size=k, max_size=k))
    policy = Policy("exact", first_round=draw(st.integers(1, 4)), round_size=draw(st.integers(1, 3)))
    return samples, n, k, float(hi - lo), policy


@settings(max_examples=400, deadline=None)
@given(streams())
def test_exact_rule_never_changes_a_verdict(case):
    samples, n, k, swing, policy = case
    r = replay(samples, k, policy, swing)
    assert r.used <= k and (r.stopped_by is None) == (r.used == k)
    assert _verdict(samples[: r.used], n) == _verdict(samples, n)


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_exact_rule_never_changes_a_guided_verdict(case, data):
    samples, n, k, swing, policy = case
    ratings = [data.draw(st.floats(0, 1)) if s is not None else None for s in samples]
    k_meta = data.draw(st.integers(1, k))
    r = replay(samples, k, policy, swing, ratings, k_meta)

    def guided(m):
        v = guided_vote(samples[:m], ratings[:m], k_meta, n)
        return v.best, v.is_tie, v.totals is None

    if r.stopped_by is not None:
        assert guided(r.used) == guided(k)


def test_exact_rule_stops_exactly_at_the_bound():
    # lead 9 after one sample of range 1..10 (swing 9): one more sample could tie it, so not settled...
    assert not settled(Policy("exact"), [(10, 1)], 1, 9.0)
    # ...a lead of 10 after two samples cannot be overturned by one
    assert settled(Policy("exact"), [(10, 1), (2, 1)], 1, 9.0)
    # a tie now is never settled while samples remain
    assert not settled(Policy("exact"), [(5, 5), (6, 6)], 1, 9.0)
    # one response: nothing to decide early
    assert not settled(Policy("exact"), [(7,), (8,)], 3, 9.0)


def _simulated(rng: random.Random, n: int, k: int, gap: float, noise: float):
    quality = [rng.uniform(3, 8) for _ in range(n)]
    quality[0] = max(quality) + gap
    return [tuple(min(10, max(1, round(q + rng.gauss(0, noise)))) for q in quality) for _ in range(k)]


@pytest.mark.parametrize("gap,noise", [(0.0, 1.5), (0.5, 2.0), (2.0, 1.0), (0.2, 3.0)])
def test_statistical_rule_keeps_its_error_level_on_simulated_streams(gap, noise):
    """At risk 0.01 the stopped verdict equals the full voting@16 verdict on at least 99% of records
    (streams of independent samples, scores 1..10 rounded from normal noise), and it saves samples."""
    rng = random.Random(f"{gap}-{noise}")
    policy = Policy("stat", 0.01)
    agree = used = 0
    records = 700
    for _ in range(records):
        n = rng.choice([2, 2, 3, 4])
        samples = _simulated(rng, n, 16, gap, noise)
        r = replay(samples, 16, policy, 9.0)
        used += r.used
        agree += _verdict(samples[: r.used], n) == _verdict(samples, n)
    assert agree / records >= 0.99, f"agreement {agree / records:.4f}"
    if gap >= 2.0:
        assert used / (16 * records) <= 0.5, f"used {used / (16 * records):.2f} of the samples on clear-cut records"


def test_flip_risk_falls_with_the_lead_and_rises_with_the_noise():
    assert flip_risk([3, 3, 4, 3], 13, 12, 9.0) < flip_risk([3, 3, 4, 3], 6, 12, 9.0)
    assert flip_risk([3, 3, 4, 3], 13, 12, 9.0) < flip_risk([9, -3, 8, -1], 13, 12, 9.0)
    assert flip_risk([1], 1, 0, 9.0) == 0.0


# -- live rounds through the engine -----------------------------------------------------------------
NARROW = """name: narrow
description: Scores 1..2, so that the exact rule can stop within a few samples.
kind: pointwise
score_min: 1
score_max: 2
user: |-
  Score each response 1-2.
  {context}
  {responses}
  Scores: \\\\boxed{{example}}
"""


@pytest.fixture
def records():
    return [record_from_dict({"id": f"r{i}", "prompt": f"What is {i}+{i}?", "responses": [str(2 * i), str(2 * i + 1)]}, "t.jsonl", i + 1)
            for i in range(12)]


@pytest.mark.slow
def test_adaptive_rounds_draw_a_prefix_of_the_full_run_and_keep_its_verdict(tiny_engine, tiny_model, tmp_path, records):
    """Through a counting engine and the sample cache: the adaptive run asks for nothing the full run did
    not generate (its samples are the full run's first ones, seed for seed), exact keeps every verdict, and
    raising K afterwards continues from the samples already drawn."""
    tmpl_path = tmp_path / "narrow.yaml"
    tmpl_path.write_text(NARROW)
    tmpl = load_template(str(tmpl_path))
    counting = RecordingEngine(tiny_engine)
    engine = CachedEngine(counting, SampleCache(tmp_path / "c.sqlite"), tiny_model)
    for seed in range(8):  # the tiny model scores at random: find a run in which some record's vote settles early
        base = dict(temperature=1.0, max_tokens=6, seed=seed)
        before = counting.calls
        full = list(score_records(records, engine, tmpl, ScoreSettings(k=8, **base), chunk=3))
        assert counting.calls - before == 8 * len(records)
        exact = list(score_records(records, engine, tmpl, ScoreSettings(k=8, adaptive="exact", **base), chunk=3))
        assert counting.calls - before == 8 * len(records), "the adaptive run asked for a sample the full run never drew"
        if any(r.stopped_by == "exact" for r in exact):
            break
    else:
        pytest.fail("no record stopped in 8 runs: the test would not see a wrong stop")
    for a, f in zip(exact, full):
        assert [s.judgment.text for s in a.samples] == [s.judgment.text for s in f.samples[: len(a.samples)]]
        assert (a.verdict.best, a.verdict.is_tie) == (f.verdict.best, f.verdict.is_tie)
        line = a.to_json()
        assert line["samples_used"] == len(a.samples) and line["stopped_by"] == a.stopped_by and line["run"]["adaptive"] == "exact"
    # raising K: K=12 adaptive reuses every sample drawn so far and generates only what it still needs
    before = counting.calls
    more = list(score_records(records, engine, tmpl, ScoreSettings(k=12, adaptive="exact", **base), chunk=3))
    assert counting.calls - before == sum(max(0, len(r.samples) - 8) for r in more)
    assert any(len(r.samples) > 8 for r in more) or all(r.stopped_by for r in more)


def test_adaptive_rounds_keep_the_batch_as_full_as_k_at_once(tiny_engine, records, short_template):
    """Records in flight are sized by what one record adds to an engine call: k for a full run, a round (2)
    for an adaptive one. Sized by k, an adaptive run at -k 16 on 16 sequences drew 4, then 2 at a time
    (one record in flight), and ran slower than the full vote it was meant to shorten."""
    from grm_cli.engine.factory import EngineOptions

    assert (EngineOptions(parallel=16).chunk(ScoreSettings(k=16).samples_per_call), EngineOptions(parallel=16).chunk(ScoreSettings(k=16, adaptive="stat").samples_per_call)) == (1, 8)
    options = EngineOptions(parallel=8)
    adaptive = ScoreSettings(k=8, adaptive="exact", max_tokens=2)
    engine = RecordingEngine(tiny_engine, batched=True)
    results = list(score_records(records[:4], engine, load_template(str(short_template)), adaptive, chunk=options.chunk(adaptive.samples_per_call)))
    assert engine.call_sizes[0] == 4 * 4  # every record's first round in one call
    assert engine.call_sizes[1] == 2 * sum(len(r.samples) > 4 for r in results)  # then a round of each record still open
    assert sum(engine.call_sizes) == sum(len(r.samples) for r in results)


def test_adaptive_rounds_evaluate_each_prompt_once(tiny_model, records, short_template):
    """A record's later rounds copy its prompts from the cells the batched engine kept after the round
    before (not evaluated again): the adaptive run evaluates no more prompt tokens than the full vote.
    Before, every round re-evaluated the record's prompt, and on HHH (931 prompt tokens, 29 generated per
    sample) the adaptive run was 1.9x slower than the full vote it was meant to shorten."""
    from grm_cli.engine.batched import BatchedLlamaEngine

    tmpl = load_template(str(short_template))
    evaluated, calls = {}, {}
    for name, adaptive in (("full", None), ("adaptive", "exact")):
        engine = RecordingEngine(BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9), batched=True)
        s = ScoreSettings(k=8, adaptive=adaptive, temperature=1.0, max_tokens=2)
        results = list(score_records(records[:4], engine, tmpl, s, chunk=4))
        evaluated[name], calls[name] = engine.engine.stats.prompt_evaluated, len(engine.call_sizes)
        assert all(r.verdict.votes == len(r.samples) for r in results)
        engine.engine.close()
    assert calls == {"full": 1, "adaptive": 3}  # rounds of 4, 2, 2: the votes of noise never settle
    assert evaluated["adaptive"] <= evaluated["full"]


@pytest.mark.slow
def test_budget_goes_to_the_closest_votes_and_is_not_exceeded(tiny_engine, tmp_path, records, short_template):
    tmpl = load_template(str(short_template))
    s = ScoreSettings(k=8, temperature=1.0, max_tokens=6, adaptive="stat", budget=60)
    results = list(score_records(records, tiny_engine, tmpl, s, chunk=12))  # one chunk: the budget's rounds ranked across all records
    used = sum(len(r.samples) for r in results)
    assert all(len(r.samples) >= 4 for r in results)  # every record gets its first round
    assert used <= 60
    assert any(r.stopped_by == "budget" for r in results)
    assert all(r.to_json()["run"]["budget"] == 60 for r in results)
    # the rounds after the first went to the closest votes: no record that got more is further from a tie than one cut off
    from grm_cli.core.adaptive import closeness

    cut = [closeness([x.scores for x in r.samples[:4]], 9.0) for r in results if r.stopped_by == "budget" and len(r.samples) == 4]
    extra = [closeness([x.scores for x in r.samples[:4]], 9.0) for r in results if len(r.samples) > 4]
    assert extra and cut and max(extra) <= min(cut)


def test_cli_adaptive_reports_the_saving_and_refuses_bad_flags(tiny_model, tmp_path, short_template):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"x{i}", "prompt": f"{i}?", "responses": ["a", "b"]}) + "\n" for i in range(3)))
    p = grm("score", data, "-m", tiny_model, "-t", short_template, "-k", 6, "--adaptive", "stat", "--max-tokens", 6, "--json", "--no-cache")
    assert p.returncode in (0, 4), p.stderr
    assert "adaptive voting:" in p.stderr and "of 18 samples" in p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert all(x["run"]["adaptive"] == "stat" and x["run"]["adaptive_risk"] == 0.01 and 4 <= x["samples_used"] <= 6 for x in lines)
    # an adaptive run resumes like any other: stored records are skipped, a changed rule is refused
    out = tmp_path / "run.jsonl"
    first = tmp_path / "first.jsonl"
    first.write_text(data.read_text().splitlines(keepends=True)[0])
    flags = ("-m", tiny_model, "-t", short_template, "-k", 6, "--adaptive", "stat", "--max-tokens", 6, "-o", out)
    assert grm("score", first, *flags).returncode in (0, 4)
    again = grm("score", data, *flags)
    assert again.returncode in (0, 4) and "skipping 1 records already in" in again.stderr
    stored = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in stored] == ["x0", "x1", "x2"] and all("samples_used" in x for x in stored)
    other = grm("score", data, "-m", tiny_model, "-t", short_template, "-k", 6, "--adaptive", "exact", "--max-tokens", 6, "-o", out)
    assert other.returncode == 2 and "adaptive" in other.stderr and "Traceback" not in other.stderr, other.stderr
    for args, msg in [(("--adaptive", "maybe"), "expected exact or stat"), (("--budget", "10"), "--budget needs --adaptive"),
                      (("--adaptive", "stat", "--adaptive-risk", "0.7"), "between 0 and 0.5"), (("-k", "1", "--adaptive", "exact"), "-k 2 or more")]:
        q = grm("score", data, "-m", tiny_model, "-t", short_template, "-k", 4, *args)
        assert q.returncode == 2 and msg in q.stderr and "Traceback" not in q.stderr, (args, q.stderr)


# -- the curve's "samples used" axis: adaptive voting replayed on stored samples ------------------------
def _stored(rid: str, preferred: int, samples, tokens: int = 10):
    from grm_cli.scoring.results import StoredResult, StoredSample

    return StoredResult(rid, len(samples[0]), preferred, None, tuple(StoredSample(s, tuple(range(len(samples[0]))), completion_tokens=tokens) for s in samples))


def test_adaptive_curve_on_stored_samples():
    from grm_cli.evaluation.adaptive import adaptive_curve

    tmpl = load_template("pointwise")
    rng = random.Random(0)
    clear = [_stored(f"c{i}", 0, [(10, 1)] * 16) for i in range(5)]  # settled at once: the exact rule stops after 8 of 16 (lead 72 > 8 * 9)
    noisy = [_stored(f"n{i}", 1, [(rng.randint(1, 10), rng.randint(1, 10)) for _ in range(16)]) for i in range(5)]
    curve = adaptive_curve(clear + noisy, Policy("exact"), tmpl)
    assert [p.k for p in curve] == [2, 4, 8, 16]
    assert all(p.agreement == 1.0 for p in curve)  # exact: by construction
    last = curve[-1]
    assert last.samples_used < 16 and 0 < last.saved < 1 and abs(last.tokens_saved - last.saved) < 1e-9
    assert last.full_accuracy is not None and last.accuracy == last.full_accuracy  # same verdicts, same tie-breaks
    stat = adaptive_curve(clear + noisy, Policy("stat", 0.01), tmpl)
    assert stat[-1].samples_used <= last.samples_used


def test_eval_replays_adaptive_voting_on_a_stored_run(tiny_engine, tmp_path, short_template, records):
    tmpl = load_template(str(short_template))
    labelled = [record_from_dict({"id": r.id, "prompt": r.query, "responses": list(r.responses), "preferred": 0}, "t.jsonl", i + 1) for i, r in enumerate(records[:4])]
    run = tmp_path / "run.jsonl"
    run.write_text("".join(json.dumps(r.to_json()) + "\n" for r in score_records(labelled, tiny_engine, tmpl, ScoreSettings(k=4, temperature=1.0, max_tokens=6), chunk=4)))
    p = grm("eval", run, "--adaptive", "exact", "-t", short_template, "--json")
    assert p.returncode == 0, p.stderr
    curve = json.loads(p.stdout)["grm_eval"]["adaptive"]["curve"]
    assert [c["k"] for c in curve] == [2, 4] and all(c["agreement"] == 1.0 for c in curve)
    t = grm("eval", run, "--adaptive", "stat", "-t", short_template)
    assert t.returncode == 0 and "Adaptive voting (stat (risk 0.01))" in t.stdout and "samples used" in t.stdout
    q = grm("eval", run, "--adaptive", "stat", "--budget", "9")
    assert q.returncode == 2 and "--budget limits the samples drawn while scoring" in q.stderr


@pytest.mark.slow  # a batched engine of its own and an adaptive run: seconds on 2 cores
def test_doctor_counts_the_cells_an_adaptive_run_holds(tiny_model, records, short_template):
    """`grm doctor -k K --adaptive RULE` counts what an adaptive run allocates: records in flight are sized by
    a round (2 samples), so four times as many as -k 8 alone puts in flight on 8 sequences, each holding its
    prompts between rounds. The batched engine's cache over a whole adaptive run stays within that count."""
    from grm_cli.doctor import work_cells
    from grm_cli.engine.batched import BatchedLlamaEngine
    from grm_cli.engine.factory import EngineOptions

    assert work_cells(4096, 16, 16, 256, adaptive=True) > work_cells(4096, 16, 16, 256)
    assert work_cells(4096, 16, 1, 256, adaptive=True) == work_cells(4096, 16, 1, 256)  # k = 1 has no rounds
    s = ScoreSettings(k=8, adaptive="exact", temperature=1.0, max_tokens=2)
    engine = BatchedLlamaEngine(tiny_model, n_ctx=8192, n_seq_max=9)
    try:
        results = list(score_records(records[:4], engine, load_template(str(short_template)), s, chunk=EngineOptions(parallel=8).chunk(s.samples_per_call)))
        assert any(len(r.samples) > 4 for r in results)  # a later round ran, with prompts kept
        assert 0 < engine.kv_cells <= work_cells(engine.n_ctx, 8, 8, 2, adaptive=True)
    finally:
        engine.close()
