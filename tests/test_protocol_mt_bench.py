"""MT-Bench's judge prompts (protocols "mt-bench-single", "mt-bench-pairwise"): renders and verdicts against
fixtures made by the official code (lm-sys/FastChat @ 0e6d3e4: fastchat/llm_judge/common.py run_judge_single,
run_judge_pair); no model."""

import ast
import json
import re
from pathlib import Path

import pytest

from grm_cli.core.protocols import get_protocol, protocol_texts
from grm_cli.core.records import record_from_dict
from grm_cli.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "protocols"
NAMES = ("mt-bench-single", "mt-bench-pairwise")


def _lines(name, file):
    return [json.loads(line) for line in (FIX / name / file).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cases(file):
    return [(name, case) for name in NAMES for case in _lines(name, file)]


@pytest.mark.parametrize(("name", "case"), _cases("renders.jsonl"), ids=lambda c: c if isinstance(c, str) else c["how"][:50])
def test_render_matches_official(name, case):
    rec = record_from_dict(case["record"])
    prompt = get_protocol(name).render(rec, tuple(case["shown"]))
    assert list(prompt.messages) == case["messages"]
    assert prompt.assistant_prefix == "" and prompt.order == tuple(case["shown"])


@pytest.mark.parametrize("name", NAMES)
def test_texts_ship_with_source(name):
    texts = protocol_texts(name)
    assert "lm-sys/FastChat@0e6d3e4" in texts["source"] and texts["licence"].startswith("Apache-2.0")
    kind = "single" if name.endswith("single") else "pair"
    assert set(texts["prompts"]) == ({"single-v1", "single-math-v1", "single-v1-multi-turn"} if kind == "single"
                                     else {"pair-v2", "pair-math-v1", "pair-v2-multi-turn"})
    multi = texts["prompts"]["single-v1-multi-turn" if kind == "single" else "pair-v2-multi-turn"]
    assert multi["system_prompt"].endswith('"Rating: [[5]]".\n\n' if kind == "single" else '"[[C]]" for a tie.')


@pytest.mark.parametrize("case", _lines("mt-bench-single", "outputs.jsonl"), ids=lambda c: c["output"][:30])
def test_single_outputs_parse_as_official(case):
    p = get_protocol("mt-bench-single")
    j = p.parse(case["output"], 1)
    if case["verdict"] is None:
        assert j.scores is None and j.verdict is None and j.error
    else:
        assert j.verdict == case["verdict"] and j.error is None
        assert j.scores == (case["official"],) and j.scores[0] == ast.literal_eval(case["verdict"])
        assert case["output"][slice(*p.spans(case["output"], 1)[0])] == case["verdict"]


@pytest.mark.parametrize("case", _lines("mt-bench-pairwise", "outputs.jsonl"), ids=lambda c: c["output"][:30])
def test_pairwise_outputs_parse_as_official(case):
    p = get_protocol("mt-bench-pairwise")
    j = p.parse(case["output"], 2)
    if case["verdict"] is None:
        assert j.scores is None and j.verdict is None and j.error
        assert not p.verdict_format(2).is_complete(case["output"])
    else:
        assert j.verdict == case["verdict"] and j.error is None
        assert j.scores == {"A": (1, 0), "B": (0, 1), "C": (0, 0)}[case["verdict"]]
        assert p.verdict_format(2).is_complete(case["output"])
        assert case["output"][slice(*p.spans(case["output"], 2)[0])] == case["verdict"]


def test_single_finished_only_by_double_brackets():
    """A one-bracket index in the critique must not end a sample; the final parse still takes the fallback."""
    vf = get_protocol("mt-bench-single").verdict_format(1)
    assert not vf.is_complete("The loop reads arr[0] twice")
    assert not vf.is_complete("Rating: [7]") and vf.parse("Rating: [7]") == ("7", None)
    assert vf.is_complete("Rating: [[7]]") and vf.is_complete("Rating: [[7.5]]")


def test_critique_is_the_explanation():
    j = get_protocol("mt-bench-single").parse("Good answer.\n\nRating: [[8]]", 1)
    assert j.critique == "Good answer." and j.scores == (8,)
    j = get_protocol("mt-bench-pairwise").parse("A is right.\n\n[[A]]", 2)
    assert j.critique == "A is right." and j.scores == (1, 0)


TEXTS = ["The answer is fine.", "The answer is fine.\n\nRating: [[", "The answer is fine.\n\nRating: 8/10",
         "Compare the two. Final verdict: [[", "Both fine. [[A", "Code: x = [[1, 2], [3, 4]]\nGood.", ""]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", TEXTS)
def test_forced_verdict_parses(name, text):
    p = get_protocol(name)
    n = 1 if name.endswith("single") else 2
    vf = p.verdict_format(n)
    assert vf.values == (tuple(str(v) for v in range(1, 11)) if n == 1 else ("A", "B", "C"))
    assert p.candidates(n) == vf.values
    assert not vf.is_complete(text)
    for v in vf.values:
        forced = vf.trim(text) + vf.prefix + v + vf.suffix
        j = p.parse(forced, n)
        assert j.verdict == v and j.error is None, forced
        assert j.scores == ((int(v),) if n == 1 else p.pick_scores(v))
        assert vf.is_complete(forced) and vf.is_closed(v + vf.suffix)
        assert vf.span(forced) == (len(forced) - len(vf.suffix) - len(v), len(forced) - len(vf.suffix))


@pytest.mark.parametrize("name", NAMES)
def test_grammar_and_regex(name):
    n = 1 if name.endswith("single") else 2
    vf = get_protocol(name).verdict_format(n)
    g = vf.grammar()
    assert g.startswith("root ::= (") and g.endswith('"]]"\n')
    for v in vf.values:
        assert f'"{v}"' in g
        assert re.fullmatch(vf.regex(), v + vf.suffix)
    assert not re.fullmatch(vf.regex(), "0" + vf.suffix) and not re.fullmatch(vf.regex(), "D" + vf.suffix)
    assert vf.answer(" 7]] and more" if n == 1 else "B]] more") == ("7]]" if n == 1 else "B]]")


def test_pick_and_tie():
    p = get_protocol("mt-bench-pairwise")
    assert p.ties and p.pick_values == ("A", "B") and p.tie_value == "C"
    assert p.expected([{"A": 0.6, "B": 0.3, "C": 0.1}], 2) == (0.6, 0.3)
    assert get_protocol("mt-bench-single").expected([{"8": 0.5, "10": 0.5}], 1) == (9.0,)


@pytest.mark.parametrize("name", NAMES)
def test_check(name):
    p = get_protocol(name)
    assert p.requires == () and p.uses == ("reference",)
    p.check(record_from_dict({"prompt": "q", "responses": ["a", "b"]}))
    if name == "mt-bench-pairwise":
        with pytest.raises(InputError, match='field "responses".*exactly 2'):
            p.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"]}))
    else:
        p.check(record_from_dict({"prompt": "q", "responses": ["a", "b", "c"]}))
    with pytest.raises(InputError, match="--template"):
        get_protocol(name, template="single")
