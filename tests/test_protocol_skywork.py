"""Skywork-Critic-Llama-3.1 ("skywork-critic"): renders against fixtures made with the model card's usage code
(template bytes via Freder-chen/ReasonGenRM @ 91070c2) and verdicts by the [[A]]/[[B]] rule (RewardBench's
process_judgement, FastChat's pair-v2 reading); no model."""

import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "protocols" / "skywork-critic"
P = get_protocol("skywork-critic")


def _lines(name):
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", _lines("renders.jsonl"), ids=lambda c: c["how"][-40:])
def test_render_matches_card(case):
    prompt = P.render(record_from_dict(case["record"]), tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])


def test_text_ships_with_source():
    t = protocol_texts("skywork-critic")
    assert "Skywork-Critic-Llama-3.1-8B" in t["source"] and "91070c23b5ee6b50b2702be32bebc663c58da801" in t["source"]
    assert "Skywork Community License" in t["licence"] and "Llama 3.1" in t["licence"]
    user = t["user"]
    assert user.startswith("Please act as an impartial judge") and user.endswith("[The End of Assistant B's Answer]\n")
    assert "question better. \nYour evaluation" in user and "as objective as possible. \nPlease directly" in user  # the card's trailing spaces
    assert '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better.\n\n[User Question]\n{input}\n' in user


@pytest.mark.parametrize("case", _lines("outputs.jsonl"), ids=lambda c: repr(c["output"][-25:]))
def test_outputs_parse_as_official(case):
    j = P.parse(case["output"], 2)
    vf = P.verdict_format(2)
    if case["verdict"] is not None:
        assert j.verdict == case["verdict"] == case["official"] and j.error is None
        assert j.scores == P.pick_scores(case["verdict"])
        assert vf.is_complete(case["output"])
        start, end = vf.span(case["output"])
        assert case["output"][start - 2:end + 2] == f"[[{case['verdict']}]]"
    else:
        assert case["official"] == "error"
        assert j.scores is None and j.verdict is None and j.error
        assert not vf.is_complete(case["output"])


@pytest.mark.parametrize("text", ["", "[[", "[[ A", "Response B has an error. [[", "Both are equal: [[C]]", "I pick [A]"])
def test_forced_verdict_parses(text):
    vf = P.verdict_format(2)
    assert (vf.prefix, vf.values, vf.suffix) == ("[[", ("A", "B"), "]]")
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = P.parse(forced, 2)
        assert j.verdict == v and j.scores == P.pick_scores(v), forced
        assert vf.span(forced) == (len(forced) - 3, len(forced) - 2)
        assert P.spans(forced, 2) == [vf.span(forced)]
    assert vf.trim("") + vf.prefix + "A" + vf.suffix == "[[A]]"  # the card's answer exactly


def test_grammar_and_regex():
    vf = P.verdict_format(2)
    g = vf.grammar()
    assert g.startswith("root ::= (") and g.rstrip().endswith('"]]"')
    for v in vf.values:
        assert f'"{v}"' in g and re.fullmatch(vf.regex(), v + "]]")
    assert not re.fullmatch(vf.regex(), "C]]")


def test_pairwise_only_no_fields_needed():
    assert P.shape == "pairwise" and P.requires == () and P.uses == () and not P.ties and P.tie_value is None
    with pytest.raises(InputError, match='"responses".*exactly 2'):
        P.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"]}))
    P.check(record_from_dict({"prompt": "q", "chosen": "a", "rejected": "b"}))
    assert P.calls((1, 0)) == [(1, 0)]
    assert P.parse("B is wrong.\n[[A]]", 2).critique == "B is wrong." and P.parse("[[A]]", 2).critique is None
