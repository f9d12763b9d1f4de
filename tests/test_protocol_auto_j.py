"""Auto-J's pairwise protocol ("auto-j-pairwise"): renders and verdicts against fixtures made by the official
code (GAIR-NLP/auto-j @ 2ae17a3: build_autoj_input, extract_pariwise_result); no model."""

import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "protocols" / "auto-j-pairwise"
P = get_protocol("auto-j-pairwise")


def _lines(name):
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _llama2(messages, bos="<s>"):
    """The Llama-2 chat template in the YAML, rendered (as a GGUF without a template would be given it)."""
    jinja2 = pytest.importorskip("jinja2")
    return jinja2.Template(P.chat_template).render(messages=messages, bos_token=bos, eos_token="</s>")


@pytest.mark.parametrize("case", _lines("renders.jsonl"), ids=lambda c: c["how"][-40:])
def test_render_matches_official(case):
    rec = record_from_dict(case["record"])
    prompt = P.render(rec, tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])
    # byte-exact with what the official code feeds the model once the Llama-2 template wraps the message
    (msg,) = prompt.messages
    assert "[INST] " + msg["content"].strip() + " [/INST]" == case["official_input"]
    assert _llama2(list(prompt.messages), bos="") == case["official_input"]


def test_texts_ship_with_source():
    texts = protocol_texts("auto-j-pairwise")
    assert "GAIR-NLP/auto-j@2ae17a3" in texts["source"] and "licence" in texts["licence"]
    assert texts["wrapper"] == "[INST] {input} [/INST]"
    assert texts["pairwise_tie"].startswith("You are assessing two submitted responses")
    assert texts["pairwise_tie"].endswith("comparison you've provided.")


@pytest.mark.parametrize("case", _lines("outputs.jsonl"), ids=lambda c: c["output"][:30])
def test_outputs_parse_as_official(case):
    j = P.parse(case["output"], 2)
    vf = P.verdict_format(2)
    if case["verdict"] is None:
        assert j.scores is None and j.verdict is None and j.error
        assert not vf.is_complete(case["output"])
    else:
        assert j.verdict == case["verdict"] and j.error is None
        assert j.scores == {0: (1, 0), 1: (0, 1), 2: (0, 0)}[case["official"]]
        assert vf.is_complete(case["output"])
        written = case["output"][slice(*P.spans(case["output"], 2)[0])]
        assert written.lower() == case["verdict"].lower()


def test_critique_is_what_precedes_the_decision():
    j = P.parse("1. The key factors: accuracy.\n\nSo, the final decision is Response 1. It is right.", 2)
    assert j.critique == "1. The key factors: accuracy." and j.scores == (1, 0)


TEXTS = ["1. The key factors: accuracy.", "1. The key factors: accuracy.\n\nSo, the final decision is",
         "Key factors.\n\nSo, the final decision is: Response 1", "Key factors. Thus the final decision is unclear", ""]


@pytest.mark.parametrize("text", TEXTS)
def test_forced_verdict_parses(text):
    vf = P.verdict_format(2)
    assert vf.values == ("Response 1", "Response 2", "Tie") and P.candidates(2) == vf.values
    assert not vf.is_complete(text)
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = P.parse(forced, 2)
        assert j.verdict == v and j.scores == P.pick_scores(v), forced
        assert vf.is_complete(forced) and vf.is_closed(v)
        assert vf.span(forced) == (len(forced) - len(v), len(forced))
        assert forced.count("final decision is") == 1


def test_grammar_and_regex():
    vf = P.verdict_format(2)
    g = vf.grammar()
    assert g.startswith("root ::= (") and g.rstrip().endswith(")")
    for v in vf.values:
        assert f'"{v}"' in g and re.fullmatch(vf.regex(), v)
    assert not re.fullmatch(vf.regex(), "Response 3")


def test_pick_and_tie():
    assert P.ties and P.pick_values == ("Response 1", "Response 2") and P.tie_value == "Tie"
    assert P.pick_scores("Tie") == (0, 0)
    assert P.expected([{"Response 1": 0.2, "Response 2": 0.7, "Tie": 0.1}], 2) == (0.2, 0.7)


def test_check():
    assert P.requires == () and P.uses == ()
    P.check(record_from_dict({"prompt": "q", "responses": ["a", "b"]}))
    with pytest.raises(InputError, match='field "responses".*exactly 2'):
        P.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"]}))
    with pytest.raises(InputError, match='field "responses"'):
        P.check(record_from_dict({"prompt": "q", "responses": ["a"]}))
