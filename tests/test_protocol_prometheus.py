"""Prometheus 2 (protocols "prometheus-absolute", "prometheus-relative"): renders and verdicts against fixtures
made by the official code (prometheus-eval/prometheus-eval @ dcfb442: PrometheusEval, parser.py); no model."""

import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
NAMES = ("prometheus-absolute", "prometheus-relative")
N_SHOWN = {"prometheus-absolute": 1, "prometheus-relative": 2}
SCORES = {f"score{i}_description": f"level {i}" for i in range(1, 6)}


def _lines(name, file):
    return [json.loads(line) for line in (FIXTURES / name / file).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cases(file):
    return [pytest.param(name, case, id=f"{name}-{i}") for name in NAMES for i, case in enumerate(_lines(name, file))]


@pytest.mark.parametrize("name,case", _cases("renders.jsonl"))
def test_render_matches_official(name, case):
    rec = record_from_dict(case["record"])
    get_protocol(name).check(rec)
    prompt = get_protocol(name).render(rec, tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])


@pytest.mark.parametrize("name", NAMES)
def test_texts_ship_with_source(name):
    texts = protocol_texts(name)
    assert "dcfb44272d5d0414832f5dbb8c2a05ebc2614234" in texts["source"] and "Apache-2.0" in texts["licence"]
    for key in ("user", "user_without_reference"):  # the official templates end with a space: YAML must keep it
        assert texts[key].startswith("###Task Description:\n") and texts[key].endswith("\n\n###Feedback: ")
    assert "{reference_answer}" in texts["user"] and "{reference_answer}" not in texts["user_without_reference"]
    assert texts["score_rubric"].startswith("[{criteria}]\nScore 1: ") and texts["system"].startswith("You are a fair judge")


@pytest.mark.parametrize("name,case", _cases("outputs.jsonl"))
def test_outputs_parse_as_official(name, case):
    p = get_protocol(name)
    j = p.parse(case["output"], N_SHOWN[name])
    official = case["verdict"]
    if official is None:
        assert j.scores is None and j.verdict is None and j.error
        assert p.verdict_format(N_SHOWN[name]).span(case["output"]) is None
    else:
        assert j.verdict == official and j.error is None
        assert j.scores == ((int(official),) if name == "prometheus-absolute" else p.pick_scores(official))
        assert p.spans(case["output"], N_SHOWN[name])


def test_pick_scores_and_critique():
    p = get_protocol("prometheus-relative")
    assert p.parse("Feedback: B cites sources. [RESULT] B", 2).scores == (0, 1)
    j = p.parse("Feedback: A is right.\n[RESULT] A", 2)
    assert j.scores == (1, 0) and j.critique == "Feedback: A is right."
    j = get_protocol("prometheus-absolute").parse("  Solid work. [RESULT] 4\n", 1)
    assert j.scores == (4,) and j.critique == "Solid work." and j.verdict == "4"


UNFINISHED = [
    "The response is accurate and cites the rubric's Score 5 level",
    "The response meets the criteria for a score of 4",  # a lenient verdict at the end: replaced by the forced one
    "Feedback: B is weaker than [Response A",
    "Feedback: fine.\nResult: B",  # a lenient verdict on the open last line (relative reads it first otherwise)
    "Feedback: fine. [RESULT] 7",
    "Feedback: fine. [RESULT] C",
    "Feedback: fine. [RES",
    "Result: A [Response B",
    "",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", UNFINISHED)
def test_forced_verdict_parses(name, text):
    p = get_protocol(name)
    vf = p.verdict_format(N_SHOWN[name])
    assert vf.prefix == "\n[RESULT] " and vf.suffix == ""
    assert vf.values == (("1", "2", "3", "4", "5") if name == "prometheus-absolute" else ("A", "B"))
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = p.parse(forced, N_SHOWN[name])
        assert j.verdict == v and j.ok, forced
        assert vf.span(forced) == (len(forced) - len(v), len(forced))
        assert vf.is_complete(forced)


@pytest.mark.parametrize("text", [
    "The answer is good; by the rubric it deserves a score of 4",  # mid-feedback: the model may go on
    "The reference answer (Score 5",
    "Score: 3",
])
def test_absolute_is_not_complete_on_lenient_forms(text):
    vf = get_protocol("prometheus-absolute").verdict_format(1)
    assert vf.find(text)[0] is not None  # the official parser would read it as the final answer ...
    assert not vf.is_complete(text)  # ... but generation goes on until a [RESULT] verdict


def test_relative_is_complete_once_a_verdict_line_is_closed():
    vf = get_protocol("prometheus-relative").verdict_format(2)
    assert not vf.is_complete("Feedback: fine.\nResult: B")  # "Result: Both ..." may follow
    assert vf.is_complete("Feedback: fine.\nResult: B\n")  # the first verdict line is settled
    assert vf.is_complete("Feedback: fine. [RESULT] A")
    assert not vf.is_complete("Feedback: A and B both")


@pytest.mark.parametrize("name", NAMES)
def test_grammar_and_regex(name):
    vf = get_protocol(name).verdict_format(N_SHOWN[name])
    grammar = vf.grammar()
    assert re.fullmatch(r'root ::= \((?:"[^"]+"(?: \| )?)+\)\n', grammar), grammar
    for v in vf.values:
        assert re.fullmatch(vf.regex(), v + vf.suffix)
    assert not re.fullmatch(vf.regex(), "6" if name == "prometheus-absolute" else "C")


@pytest.mark.parametrize("name", NAMES)
def test_rubric_is_required(name):
    p = get_protocol(name)
    rec = record_from_dict({"prompt": "q", "responses": ["a", "b"][: N_SHOWN[name]]})
    with pytest.raises(InputError, match='missing field "rubric"'):
        p.check(rec)
    with pytest.raises(InputError, match='"rubric"'):
        p.render(rec, tuple(range(N_SHOWN[name])))
    assert p.requires == ("rubric",) and p.uses == ("reference",)


def test_absolute_needs_descriptions_of_one_to_five():
    p = get_protocol("prometheus-absolute")
    rec = record_from_dict({"prompt": "q", "responses": ["a"], "rubric": {"criteria": "c", "scores": {"0": "bad", "1": "good"}}})
    with pytest.raises(InputError, match="exactly scores 1 to 5"):
        p.check(rec)
    with pytest.raises(InputError, match="exactly scores 1 to 5"):
        p.render(rec, (0,))
    p.check(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": {"criteria": "c", **SCORES}}))
    p.check(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": {"criteria": "c"}}))  # criteria only: a text


def test_reference_picks_the_template():
    for name in NAMES:
        n = N_SHOWN[name]
        base = {"prompt": "q", "responses": ["a", "b"][:n], "rubric": "c"}
        without = get_protocol(name).render(record_from_dict(base), tuple(range(n))).messages[1]["content"]
        with_ref = get_protocol(name).render(record_from_dict({**base, "reference": "R"}), tuple(range(n))).messages[1]["content"]
        assert "###Reference Answer" not in without
        assert "\n###Reference Answer" in with_ref and "\nR\n" in with_ref


def test_pairwise_takes_exactly_two():
    p = get_protocol("prometheus-relative")
    with pytest.raises(InputError, match="exactly 2 responses"):
        p.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"], "rubric": "c"}))
    assert p.shape == "pairwise" and not p.ties and p.pick_scores("A") == (1, 0)
    assert get_protocol("prometheus-absolute").calls([2, 0, 1]) == [(0,), (1,), (2,)]


_FRAGMENTS = ["   ", " \n ", "\n", "[RESULT]", "[SCORE]", "Score:", "score", "Result", "[Result]:", "score of", "[Result:",
              "[RESULT:", "[Response", " Response", " ", "(", ")", "[", "]", "1", "4", "5", "0", "6", "/5", " out of 5",
              "A", "B", "a", "b", "C", "Feedback:", "x", ".", ":", "Both"]


@pytest.mark.parametrize("name", NAMES)
def test_forced_verdict_parses_on_random_texts(name):
    """Whatever a sample ends with, either it is complete (and parses) or trim + prefix + value parses to value."""
    import random

    rng = random.Random(7)
    p = get_protocol(name)
    vf = p.verdict_format(N_SHOWN[name])
    for _ in range(3000):
        text = "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(0, 14)))
        if vf.is_complete(text):
            assert p.parse(text, N_SHOWN[name]).ok, text
            continue
        for v in vf.values:
            forced = vf.trim(text) + vf.prefix + v
            assert p.parse(forced, N_SHOWN[name]).verdict == v, (text, forced)
