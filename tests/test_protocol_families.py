"""Every judge protocol on the tiny random models of the families its judges are built on (issue 28, item 7):
Mistral (Prometheus 2), Phi-3.5 (Flow-Judge), Llama 3.1 (Selene-1-Mini, Skywork-Critic).

Per family and protocol, the first call of a record rendered through the family's own chat template (the
real one, tests/fixtures/chat_templates) and tokenized as the engine feeds it: exactly one BOS where the
family writes one, the system message where that template puts it, the family's generation prompt then the
protocol's pre-fill at the end, the turn markers as single control tokens (a protocol text never smuggles
one in), and the family's end-of-turn token ends generation. Per protocol, on its judge's family: `k = 2`
through the batched engine `grm score` builds; the random model writes noise, so every verdict is forced,
and every sample parses to one of the protocol's allowed verdicts; a judge that ends its turn at once still
gets a verdict that parses.

The models are tests/families.py's (hidden size 64, 2 layers), built and converted once per session with
llama.cpp's converter, only the three families here. A protocol whose module does not import yet is skipped.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from families import FAMILIES, build
from test_families import GENERATION_PROMPT, TURN_MARKERS

from grm_cli.core.protocols import DEFAULT_PROTOCOL, get_protocol, protocol_names
from grm_cli.core.records import record_from_dict
from grm_cli.scoring.settings import ScoreSettings

# the family conversions (and llama.cpp loads) make every test here part of the full suite, not the fast subset
pytestmark = pytest.mark.slow

NAMES = ["mistral", "phi3", "llama3"]
PROTOCOLS = protocol_names()
# each protocol is scored on the family of the judges that speak it; the generic ones are spread over the three
JUDGE_FAMILY = {
    "prometheus-absolute": "mistral", "prometheus-relative": "mistral",  # Prometheus 2: Mistral-7B-Instruct-v0.2
    "flow-judge": "phi3",  # Flow-Judge-v0.1: Phi-3.5-mini
    "selene-absolute": "llama3", "selene-pairwise": "llama3", "skywork-critic": "llama3",  # Llama-3.1-8B fine-tunes
    "auto-j-pairwise": "mistral",  # Auto-J is Llama-2 "[INST]": Mistral's layout is the nearest here
    "deepseek-grm": "phi3", "mt-bench-single": "phi3", "mt-bench-pairwise": "llama3",  # any instruct model
}
# the date Llama 3.1's template writes into its system header when the caller gives none
LLAMA3_SYSTEM_HEADER = ("<|start_header_id|>system<|end_header_id|>\n\n"
                        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n")

RUBRIC = {"criteria": "Is the answer correct and helpful?", "score1_description": "Wrong.", "score2_description": "Mostly wrong.",
          "score3_description": "Partly right.", "score4_description": "Right with slips.", "score5_description": "Right and clear."}
# with score descriptions and a reference; and with a plain-text rubric and none (the protocols' other prompts)
ROWS = [
    {"id": "r1", "prompt": "What is 2 + 2? Keep {braces} as written.", "responses": ["4", "5"], "rubric": RUBRIC, "reference": "4"},
    {"id": "r2", "prompt": "Name a colour.", "responses": ["Blue.", "Seven."], "rubric": "Is it a colour?"},
]


def _protocol(name: str):
    """The protocol: every one grm lists must import (a broken module fails here, never skips)."""
    return get_protocol(name)


def _layout(protocol):
    """What scoring takes: the default protocol's template, any other protocol itself."""
    return protocol.template if protocol.name == DEFAULT_PROTOCOL else protocol


def _records():
    return [record_from_dict(row, "family.jsonl", i) for i, row in enumerate(ROWS, start=1)]


def _first_call(protocol, rec):
    """A record's first call (its prompt and request) exactly as scoring plans it."""
    from grm_cli.scoring.plan import sample_plan

    return sample_plan(rec, _layout(protocol), ScoreSettings(k=1, max_tokens=8), None)[0].calls[0]


def expected_prompt(family: str, messages, prefix: str) -> str:
    """What the family's template writes for [system,] user and the generation prompt, then the pre-fill,
    as the real templates do it: Mistral-Nemo folds the system message into the (last) user turn, Phi-3.5
    gives it its own <|system|> turn (and writes no BOS), Llama 3.1 trims it into its system header (which
    it writes, with its dates, even without one) and trims the user turn."""
    roles = [m["role"] for m in messages]
    assert roles in (["user"], ["system", "user"]), roles
    system = messages[0]["content"] if roles[0] == "system" else None
    user = messages[-1]["content"]
    if family == "mistral":
        return "<s>[INST]" + (f"{system}\n\n" if system is not None else "") + user + "[/INST]" + prefix
    if family == "phi3":
        return (f"<|system|>\n{system}<|end|>\n" if system else "") + f"<|user|>\n{user}<|end|>\n" + "<|assistant|>\n" + prefix
    if family == "llama3":
        return ("<|begin_of_text|>" + LLAMA3_SYSTEM_HEADER + (system or "").strip() + "<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\n" + user.strip() + "<|eot_id|>" + GENERATION_PROMPT["llama3"] + prefix)
    raise KeyError(family)


# -- the three families, built and converted once -------------------------------------------------------
@pytest.fixture(scope="session")
def judge_family_ggufs(tmp_path_factory) -> dict[str, Path]:
    """mistral, phi3 and llama3 as tiny HF folders, converted to F32 GGUFs by llama.cpp's converter (in
    parallel: child processes, mostly importing and writing)."""
    from grm_cli.errors import ModelError
    from grm_cli.models.convert import convert, converter_dir

    try:
        converter_dir()
    except ModelError as e:  # README's second command and .ci/run install it: missing is a failure, not a skip
        pytest.fail(str(e))
    root = tmp_path_factory.mktemp("judge-families")
    folders = {n: build(n, root / n) for n in NAMES}
    paths = {n: root / f"{n}.gguf" for n in NAMES}
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: convert(folders[n], paths[n], quant="F32", progress=False), NAMES))
    return paths


@pytest.fixture(scope="session")
def family_engine(judge_family_ggufs):
    """One simple LlamaEngine per family (loaded on first use): rendering and tokenizing, as every engine does."""
    from grm_cli.engine.llama import LlamaEngine

    return functools.cache(lambda name: LlamaEngine(judge_family_ggufs[name], n_ctx=4096, n_gpu_layers=0))


@pytest.fixture(scope="session")
def scoring_engine(judge_family_ggufs):
    """One engine per family as `grm score` builds it (the factory's batched engine, no sample cache)."""
    from grm_cli.engine.factory import EngineOptions, build_engine

    return functools.cache(lambda name: build_engine(EngineOptions(model=str(judge_family_ggufs[name]), ctx=4096, cache=False, n_gpu_layers="0")))


def _single_token(eng, text: str) -> int:
    ids = eng.llm.tokenize(text.encode(), add_bos=False, special=True)
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens in this vocabulary, expected one control token"
    return ids[0]


# -- 1. the family's chat template around each protocol's prompt -----------------------------------------
@pytest.mark.parametrize("protocol_name", PROTOCOLS)
@pytest.mark.parametrize("family", NAMES)
def test_protocol_prompt_in_family_template(family, protocol_name, family_engine):
    """The first call of each record, rendered and tokenized as the engines do it (see the module docstring)."""
    proto = _protocol(protocol_name)
    eng = family_engine(family)
    for rec in _records():  # with score descriptions and a reference; with a plain-text rubric and none
        _check_rendered(family, protocol_name, eng, _first_call(proto, rec))


def _check_rendered(family: str, protocol_name: str, eng, call) -> None:
    import llama_cpp

    fam = FAMILIES[family]
    messages, prefix = call.prompt.messages, call.prompt.assistant_prefix
    assert list(call.request.messages) == list(messages) and call.request.assistant_prefix == prefix
    text = eng.render(messages, prefix)
    toks = eng.tokenize(text)  # exactly what the engines feed llama.cpp
    assert eng.count_tokens(messages, prefix) == len(toks)

    # the whole prompt is the family's template around the protocol's messages, nothing more or less
    assert text == expected_prompt(family, messages, prefix), text[:300] + " ... " + text[-300:]
    # the answer's pre-fill sits right after the family's own generation prompt, the assistant turn open
    assert text.endswith(GENERATION_PROMPT[family] + prefix), text[-200:]
    # the system message, where the template puts it
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    if system is not None:
        user = messages[-1]["content"]
        where = {"mistral": f"[INST]{system}\n\n{user}[/INST]",  # folded into the user turn
                 "phi3": f"<|system|>\n{system}<|end|>\n<|user|>\n",  # a turn of its own
                 "llama3": LLAMA3_SYSTEM_HEADER + system.strip() + "<|eot_id|>"}[family]  # after the template's dates
        assert where in text, f"{family} does not place the system message of {protocol_name} as its template does"

    # exactly one BOS, at the start, where the family writes one (Phi-3.5's template and tokenizer add none)
    bos = eng.llm.token_bos()
    if fam.bos and fam.add_bos:
        assert toks[0] == bos and toks.count(bos) == 1, f"{toks.count(bos)} BOS tokens, first token {toks[0]}"
    else:
        assert bos < 0 or bos not in toks

    # turn markers are single control tokens, as many as the template's own structure writes: the protocol's
    # words (and the record) add none
    skeleton = expected_prompt(family, [{"role": m["role"], "content": "x"} for m in messages], "")
    for marker in {*TURN_MARKERS[family], *fam.specials, fam.eos}:
        marker_id = _single_token(eng, marker)
        assert toks.count(marker_id) == skeleton.count(marker), (marker, toks.count(marker_id), skeleton.count(marker))

    # the family's end-of-turn token ends generation in llama.cpp
    eot = _single_token(eng, fam.eos)
    vocab = llama_cpp.llama_model_get_vocab(eng.llm.model)
    assert llama_cpp.llama_vocab_is_eog(vocab, eot), f"{fam.eos} is not end-of-generation in the {family} GGUF"


# -- 2. k = 2 on each protocol's judge family: every verdict forced, every sample parses ---------------
class _Recorder:
    """The engine, recording each request with the generation it got (scoring hands a batched engine whole rounds)."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, req):
        return self.generate_many([req])[0]

    def generate_many(self, requests):
        gens = self.engine.generate_many(requests)
        self.seen.extend(zip(requests, gens))
        return gens


def _check_generation(req, gen, verdict) -> None:
    """forced_tail exactly where the model's own text held no verdict; a forced one is the kept text, the
    format's opening and one allowed value."""
    tail = req.tail
    assert tail is not None
    assert gen.forced_tail == (not tail.is_complete(gen.free_text)), (gen.forced_tail, gen.free_text)
    if gen.forced_tail:
        kept = tail.trim(gen.free_text)
        start = kept + tail.prefix_for(kept)
        assert gen.text.startswith(start), (gen.text, start)
        if verdict is not None:  # a tagged verdict: one of its values, then its suffix
            assert gen.text[len(start):] in {v + verdict.suffix for v in verdict.values}, gen.text[len(start):]


@pytest.mark.parametrize("protocol_name", PROTOCOLS)
def test_every_forced_verdict_parses_on_the_judge_family(protocol_name, scoring_engine):
    from grm_cli.core.protocols.base import TaggedVerdict
    from grm_cli.scoring.job import ScoreJob
    from grm_cli.scoring.pipeline import score_records

    proto = _protocol(protocol_name)
    family = JUDGE_FAMILY.get(protocol_name, "llama3")
    eng = _Recorder(scoring_engine(family))
    layout = _layout(proto)
    settings = ScoreSettings(k=2, max_tokens=8)
    ready = ScoreJob(layout, settings).prepare(_records(), eng)
    results = list(score_records(ready, eng, layout, settings))
    assert [r.record.id for r in results] == [row["id"] for row in ROWS]

    gens = iter(eng.seen)
    for r in results:
        bound = proto.for_record(r.record)
        assert len(r.samples) == 2 and r.verdict.unparsed == 0, [s.judgment.error for s in r.samples]
        for s in r.samples:
            assert s.scores is not None and len(s.scores) == 2, s.judgment.error
            n_calls = 2 if proto.shape == "absolute" else 1
            mine = [next(gens) for _ in range(n_calls)]
            assert s.forced_tail == any(g.forced_tail for _, g in mine)
            verdict = bound.verdict_format(1 if proto.shape == "absolute" else 2)
            for req, g in mine:
                _check_generation(req, g, verdict if isinstance(verdict, TaggedVerdict) else None)
            lo, hi = bound.scale
            if proto.shape == "pairwise":
                values = proto.verdict_format(2).values
                assert s.judgment.verdict in values, (s.judgment.verdict, values)
                assert sorted(s.scores) in ([[0, 1], [0, 0]] if proto.ties else [[0, 1]]), s.scores
                assert (s.scores == (0, 0)) == (s.judgment.verdict == proto.tie_value)
            elif proto.shape == "absolute":
                values = bound.verdict_format(1).values
                assert [c["shown"] for c in s.calls] == [[0], [1]]
                assert all(c["verdict"] in values and c["parse_error"] is None for c in s.calls), (s.calls, values)
                assert all(lo <= x <= hi for x in s.scores)
            else:  # DeepSeek-GRM's score line: a score per response on the template's scale
                assert all(lo <= x <= hi for x in s.scores)
        if proto.shape == "pairwise":  # a pair is shown both ways across the two samples
            assert {tuple(s.order) for s in r.samples} == {(0, 1), (1, 0)}
    assert next(gens, None) is None, "more generations than the samples' calls"


@pytest.mark.parametrize("protocol_name", PROTOCOLS)
def test_a_judge_that_ends_its_turn_at_once_gets_a_verdict(protocol_name, family_engine, monkeypatch):
    """The family's end-of-turn token stops the free answer in grm's engine (a huge bias on it: the model's
    first token ends its turn); the forced verdict then follows and parses."""
    from grm_cli.scoring.plan import judge_calls

    proto = _protocol(protocol_name)
    family = JUDGE_FAMILY.get(protocol_name, "llama3")
    eng = family_engine(family)
    eot = _single_token(eng, FAMILIES[family].eos)
    finishes: list = []
    create = eng.llm.create_completion

    def biased(*args, **kw):
        if not kw.get("stream"):
            return create(*args, **kw)  # the forced tail: its grammar decides
        stream = create(*args, **{**kw, "logit_bias": {eot: 100.0}})

        def chunks():
            try:
                for chunk in stream:
                    finishes.append(chunk["choices"][0].get("finish_reason"))
                    yield chunk
            finally:
                stream.close()

        return chunks()

    monkeypatch.setattr(eng.llm, "create_completion", biased)
    rec = _records()[0]
    call = _first_call(proto, rec)
    gen = eng.generate(call.request)
    assert "stop" in finishes and gen.free_text == "", (finishes, gen.free_text)
    assert gen.forced_tail
    text = call.prompt.assistant_prefix + gen.text
    layout = _layout(proto) if proto.name == DEFAULT_PROTOCOL else proto.for_record(rec)
    j, scores = judge_calls(layout, [text], [call], call.prompt.order)
    assert j.error is None and scores is not None, (j.error, text)


# the protocol each family's judges speak, for what is checked once per family
FAMILY_JUDGE = {"mistral": "prometheus-relative", "phi3": "flow-judge", "llama3": "skywork-critic"}


def _opening_call(family: str):
    proto = _protocol(FAMILY_JUDGE[family])
    rec = _records()[0]
    call = _first_call(proto, rec)
    return proto, rec, call, call.request.tail.prefix_for("")


@pytest.mark.parametrize("family", NAMES)
def test_forced_verdict_reads_as_recorded_in_the_simple_engine(family, family_engine, monkeypatch):
    """When a verdict is forced, the tokens the model conditions on after its own answer read back as exactly
    the text grm records (here the answer ends at once, end-of-turn first, so that text is the format's
    opening alone). A SentencePiece vocabulary (these three; the real Mistral-7B and Phi-3.5) writes a "▁"
    in front of any fragment tokenized on its own, which the recorded text does not hold."""
    proto, rec, call, opening = _opening_call(family)
    eng = family_engine(family)
    eot = _single_token(eng, FAMILIES[family].eos)
    fed: list = []
    create = eng.llm.create_completion

    def biased(prompt, **kw):
        if kw.get("stream"):
            return create(prompt, **{**kw, "logit_bias": {eot: 100.0}})
        fed.append(list(prompt))
        return create(prompt, **kw)

    monkeypatch.setattr(eng.llm, "create_completion", biased)
    gen = eng.generate(call.request)
    assert gen.free_text == "" and gen.forced_tail and len(fed) == 1 and gen.text.startswith(opening)
    prompt = eng.tokenize(eng.render(call.prompt.messages, call.prompt.assistant_prefix))
    assert fed[0][: len(prompt)] == prompt
    read = eng.llm.detokenize(fed[0][len(prompt):], special=True).decode("utf-8")
    assert read == opening, f"simple engine ({family}): the model reads {read!r} before its forced verdict, grm records {opening!r}"


@pytest.mark.parametrize("family", NAMES)
def test_forced_verdict_reads_as_recorded_in_the_batched_engine(family, scoring_engine, monkeypatch):
    """The same in the batched engine `grm score` uses: the text it tokenizes to start a forced tail (the
    rest of the kept answer and the format's opening) reads back as that text."""
    from grm_cli.scoring.pipeline import score_records

    proto, rec, call, opening = _opening_call(family)
    batched = scoring_engine(family)
    model = batched.model
    llm = model.llm
    pieces: list = []
    continuation = model.continuation

    def spy(text: str, *, special: bool):
        ids = continuation(text, special=special)
        pieces.append((text, ids))
        return ids

    monkeypatch.setattr(model, "continuation", spy)
    (result,) = score_records([rec], batched, _layout(proto), ScoreSettings(k=2, max_tokens=8))
    assert all(s.forced_tail for s in result.samples)  # noise: every verdict is forced here
    tails = [(text, ids) for text, ids in pieces if text.endswith(opening)]
    assert len(tails) == 2 * len(proto.calls((0, 1))), pieces  # one forced tail per call of each sample
    for text, ids in tails:
        read = llm.detokenize(ids, special=True).decode("utf-8", "replace")
        assert read == text, f"batched engine ({family}): the model reads {read!r} before its forced verdict, grm records {text!r}"
