"""Atla Selene-1-Mini ("selene-absolute", "selene-pairwise"): renders and verdicts against fixtures made by the
official code (atla-ai/selene-mini @ 1425d20 templates and cookbook parser; allenai/reward-bench @ 05a9005 Atla
prompt and parser); no model."""

import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "protocols"
ABS = get_protocol("selene-absolute")
PAIR = get_protocol("selene-pairwise")
RUBRIC = {"criteria": "Is it right?", "scores": {str(s): f"score {s}" for s in range(1, 6)}}


def _lines(name, file):
    return [json.loads(line) for line in (FIX / name / file).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cases(file):
    return [(p, c) for p, name in ((ABS, "selene-absolute"), (PAIR, "selene-pairwise")) for c in _lines(name, file)]


def _n(p):
    return 2 if p.shape == "pairwise" else 1


@pytest.mark.parametrize("p,case", _cases("renders.jsonl"), ids=lambda x: x["how"][:50] if isinstance(x, dict) else x.name)
def test_render_matches_official(p, case):
    prompt = p.render(record_from_dict(case["record"]), tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])


def test_texts_ship_with_source():
    a, p = protocol_texts("selene-absolute"), protocol_texts("selene-pairwise")
    assert "1425d208ee0929fca282eb14cc5efab7310c0060" in a["source"] and "Apache-2.0" in a["licence"]
    assert "05a9005efb607249822c193590c8ecab87c77052" in p["source"] and "Apache-2.0" in p["licence"]
    for key in ("user", "user_with_reference"):
        assert a[key].startswith("You are tasked with evaluating a response") and a["rubric_block"] in a[key]
    assert a["user"].endswith("Score 5: {rubric_score_5_description}") and a["user_with_reference"].endswith("Reference answer:\n{reference_response}")
    assert a["rubric_block"].startswith("[{rubric_objective}]\nScore 1: ")
    assert p["user"].endswith("Response B:\n```\n{assistant_response_b}\n```") and p["user_with_rubric"].endswith("Score Rubrics:\n[{rubric_objective}]")
    assert "**Result:** <A or B>" in p["user"] and "**Result:** <an integer between 1 and 5>" in a["user"]


@pytest.mark.parametrize("p,case", _cases("outputs.jsonl"), ids=lambda x: repr(x["output"][-25:]) if isinstance(x, dict) else x.name)
def test_outputs_parse_as_official(p, case):
    j = p.parse(case["output"], _n(p))
    vf = p.verdict_format(_n(p))
    if case["verdict"] is not None:
        assert j.verdict == case["verdict"] and j.error is None
        assert j.scores == ((int(case["verdict"]),) if p is ABS else p.pick_scores(case["verdict"]))
        assert vf.is_complete(case["output"])
        start, end = vf.span(case["output"])
        assert int(case["output"][start:end]) == int(case["verdict"]) if p is ABS else case["output"][start:end] == case["verdict"]
    else:  # the official parser fails, or (absolute) gives a score outside 1-5, or (pairwise) a word other than A/B
        assert j.scores is None and j.verdict is None and j.error
        assert not vf.is_complete(case["output"])


def test_cookbook_example_and_critique():
    (case,) = [c for c in _lines("selene-absolute", "outputs.jsonl") if "cookbooks" in c["source"]]
    j = ABS.parse(case["output"], 1)
    assert j.scores == (4,) and j.critique.startswith("The response provides a comprehensive overview") and not j.critique.endswith("*")
    j = PAIR.parse("**Reasoning:** B is wrong.\n\n**Result:** A", 2)
    assert j.critique == "B is wrong." and j.scores == (1, 0)


ABS_TEXTS = ["**Reasoning:** Good.", "**Reasoning:** Good.\n\n**Result:** 7", "**Reasoning:** Good.\n**Result:** four\nMore thoughts.",
             "**Reasoning:** Good.\n\n**Res", "**Reasoning:** Good.\n\n**Result:** ", ""]
PAIR_TEXTS = ["**Reasoning:** Good.", "**Reasoning:** Both fine.\n\n**Result:** Tie", "**Reasoning:** The **Result:** is close.",
              "**Reasoning:** Good.\n\n**Result:**", ""]


@pytest.mark.parametrize("p,text", [(ABS, t) for t in ABS_TEXTS] + [(PAIR, t) for t in PAIR_TEXTS])
def test_forced_verdict_parses(p, text):
    vf = p.verdict_format(_n(p))
    assert vf.prefix == "\n\n**Result:** " and vf.suffix == ""
    assert vf.values == (("1", "2", "3", "4", "5") if p is ABS else ("A", "B"))
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = p.parse(forced, _n(p))
        assert j.verdict == v and j.error is None, forced
        assert vf.span(forced) == (len(forced) - len(v), len(forced))
        assert p.spans(forced, _n(p)) == [vf.span(forced)]


@pytest.mark.parametrize("p", [ABS, PAIR], ids=lambda p: p.name)
def test_grammar_and_regex(p):
    vf = p.verdict_format(_n(p))
    g = vf.grammar()
    assert g.startswith("root ::= (") and g.endswith(")\n")
    for v in vf.values:
        assert f'"{v}"' in g and re.fullmatch(vf.regex(), v + vf.suffix)
    assert not re.fullmatch(vf.regex(), "7") and not re.fullmatch(vf.regex(), "C")


def test_absolute_requires_rubric_of_five_scores():
    assert ABS.requires == ("rubric",) and ABS.uses == ("reference",) and ABS.shape == "absolute" and ABS.scale == (1, 5)
    rec = record_from_dict({"prompt": "q", "responses": ["a", "b"]})
    with pytest.raises(InputError, match='"rubric"'):
        ABS.check(rec)
    with pytest.raises(InputError, match='"rubric"'):
        ABS.render(rec, (0,))
    three = record_from_dict({"prompt": "q", "responses": ["a"], "rubric": {"criteria": "c", "scores": {"1": "x", "2": "y", "3": "z"}}})
    with pytest.raises(InputError, match='"rubric".*1 to 5'):
        ABS.check(three)
    ABS.check(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": "Be right."}))
    ABS.check(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": RUBRIC}))  # a reference is optional
    assert ABS.calls((1, 0)) == [(0,), (1,)]


def test_absolute_reference_picks_its_template():
    with_ref = ABS.render(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": RUBRIC, "reference": "the {ref}"}), (0,))
    without = ABS.render(record_from_dict({"prompt": "q", "responses": ["a"], "rubric": RUBRIC}), (0,))
    assert with_ref.messages[0]["content"].endswith("Reference answer:\nthe {ref}")
    assert "Reference answer" not in without.messages[0]["content"] and without.messages[0]["content"].endswith("Score 5: score 5")


def test_pairwise_takes_a_pair_and_an_optional_rubric():
    assert PAIR.shape == "pairwise" and PAIR.uses == ("rubric",) and PAIR.requires == () and not PAIR.ties
    with pytest.raises(InputError, match='"responses".*exactly 2'):
        PAIR.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"]}))
    with pytest.raises(InputError, match='"responses"'):
        PAIR.check(record_from_dict({"prompt": "q", "responses": ["a"], "label": True}))
    PAIR.check(record_from_dict({"prompt": "q", "responses": ["a", "b"]}))
    plain = PAIR.render(record_from_dict({"prompt": "q", "responses": ["a", "b"]}), (1, 0)).messages[0]["content"]
    rubric = PAIR.render(record_from_dict({"prompt": "q", "responses": ["a", "b"], "rubric": "Be {kind}."}), (1, 0)).messages[0]["content"]
    assert "Response A:\n```\nb\n```" in plain and "Score Rubrics" not in plain
    assert rubric.endswith("Score Rubrics:\n[Be {kind}.]")
    assert PAIR.pick_scores("A") == (1, 0) and PAIR.pick_scores("B") == (0, 1)
    assert PAIR.describe()["scale"] == "pick A/B"
