"""Flow-Judge-v0.1 (protocol "flow-judge"): renders and verdicts against fixtures made by the official code
(flowaicom/flow-judge @ 9865fc0: BaseFlowJudge._format_prompt, EvalOutput.parse); no model."""

import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "protocols" / "flow-judge"
P = get_protocol("flow-judge")


def _lines(name):
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _rec(scores=None, **kw):
    rubric = {"criteria": "Is it right?", "scores": {str(s): f"score {s}" for s in scores}} if scores else "Be right."
    return record_from_dict({"prompt": "q", "responses": ["r"], "rubric": rubric, **kw})


@pytest.mark.parametrize("case", _lines("renders.jsonl"), ids=lambda c: c["how"][:40])
def test_render_matches_official(case):
    rec = record_from_dict(case["record"])
    prompt = P.render(rec, tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])


def test_texts_ship_with_source():
    texts = protocol_texts("flow-judge")
    assert "9865fc0" in texts["source"] and "Apache-2.0" in texts["licence"]
    assert texts["user"].startswith("# GOAL\n") and texts["user"].endswith("Strictly adhere to the evaluation criteria and rubric.")
    assert "{INPUTS}" in texts["user"] and "{INPUTS}" not in texts["user_no_inputs"]


@pytest.mark.parametrize("case", _lines("outputs.jsonl"), ids=lambda c: c["output"][:30])
def test_outputs_parse_as_official(case):
    scores = case.get("scores")
    rec = _rec(scores) if scores else None
    allowed = scores or [1, 2, 3, 4, 5]
    j = P.parse(case["output"], 1, rec=rec)
    official = case["verdict"]
    if official is not None and int(official) in allowed:
        assert j.scores == (int(official),) and j.verdict == official and j.error is None
        assert j.critique is not None
        assert P.verdict_format(1, rec).is_complete(case["output"])
    else:  # the library fails, or gives a score off the rubric (grm fails it, as flowaicom's eval harness does)
        assert j.scores is None and j.verdict is None and j.error
        assert not P.verdict_format(1, rec).is_complete(case["output"])


def test_base_signatures_use_one_to_five():
    vf = P.verdict_format(1)
    assert vf.values == ("1", "2", "3", "4", "5") and P.candidates(1) == vf.values
    assert P.parse("<feedback>ok</feedback><score>5</score>", 1).scores == (5,)
    assert P.allowed(_rec()) == (1, 2, 3, 4, 5)  # a text rubric has no score keys
    assert P.allowed(_rec([0, 1])) == (0, 1)


@pytest.mark.parametrize("scores", [None, [0, 1], [1, 2, 3]])
@pytest.mark.parametrize("text", ["<feedback>Fine overall.</feedback>", "<feedback>\nFine.\n</feedback>\n<score>fo",
                                  "<feedback>Fine.</feedback>\n<score>9</score>"])
def test_forced_verdict_parses(scores, text):
    rec = _rec(scores) if scores else None
    vf = P.verdict_format(1, rec)
    assert vf.values == tuple(str(s) for s in (scores or [1, 2, 3, 4, 5]))
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = P.parse(forced, 1, rec=rec)
        assert j.verdict == v and j.scores == (int(v),), forced
        assert vf.span(forced) == (len(forced) - len(vf.suffix) - len(v), len(forced) - len(vf.suffix))
        assert P.spans(forced, 1, rec=rec) == [vf.span(forced)]


@pytest.mark.parametrize("scores", [None, [0, 1], [1, 2, 3]])
def test_grammar_and_regex(scores):
    vf = P.verdict_format(1, _rec(scores) if scores else None)
    g = vf.grammar()
    assert g.startswith("root ::= (") and g.rstrip().endswith('"</score>"')
    for v in vf.values:
        assert f'"{v}"' in g
        assert re.fullmatch(vf.regex(), v + vf.suffix)
    assert not re.fullmatch(vf.regex(), "7" + vf.suffix)


def test_requires_rubric_uses_reference():
    assert P.requires == ("rubric",) and P.uses == ("reference",) and P.shape == "absolute"
    rec = record_from_dict({"prompt": "q", "responses": ["a", "b"]})
    with pytest.raises(InputError, match='"rubric"'):
        P.check(rec)
    with pytest.raises(InputError, match='"rubric"'):
        P.render(rec, (0,))
    P.check(_rec([1, 2, 3]))  # a reference is optional
    assert P.calls((1, 0)) == [(0,), (1,)]


def test_reference_only_when_given():
    with_ref = P.render(_rec([0, 1], reference="the {ref}"), (0,)).messages[0]["content"]
    without = P.render(_rec([0, 1]), (0,)).messages[0]["content"]
    assert "<reference_answer>\nthe {ref}\n</reference_answer>" in with_ref
    assert "<reference_answer>" not in without and "<query>\nq\n</query>" in without
