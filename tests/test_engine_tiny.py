"""The scoring pipeline on a real llama.cpp engine with a tiny random model (fast; its free text is noise)."""

from __future__ import annotations

import pytest

from grm_cli.core.prompt import load_template
from grm_cli.core.records import record_from_dict
from grm_cli.core.score_line import ScoreLine
from grm_cli.engine.base import ContextOverflow, GenerationRequest
from grm_cli.errors import InputError
from grm_cli.scoring.job import ScoreJob
from grm_cli.scoring.pipeline import score_record
from grm_cli.scoring.plan import forced_tail
from grm_cli.scoring.settings import ScoreSettings

POINTWISE = load_template("pointwise")


def _rec(n: int, rid: str = "r", **extra):
    return record_from_dict({"id": rid, "prompt": "Add 2 and 3.", "responses": [f"answer {i}: {i + 4}" for i in range(n)], **extra}, "mem.jsonl", 7)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_forced_tail_always_gives_n_in_range_integers(tiny_engine, n):
    result = score_record(_rec(n), tiny_engine, POINTWISE, ScoreSettings(k=3, seed=n, max_tokens=24))
    assert len(result.samples) == 3
    for s in result.samples:
        assert s.judgment.error is None, s.judgment.text
        assert s.forced_tail  # the noise model never writes a valid score line itself
        assert len(s.scores) == n and all(1 <= x <= 10 for x in s.scores)
        assert sorted(s.order) == list(range(n))
        # scores map back from the shown order to the record order
        assert all(s.scores[s.order[pos]] == s.judgment.scores[pos] for pos in range(n))
    assert result.verdict.votes == 3 and result.verdict.unparsed == 0
    assert list(result.verdict.totals) == [sum(s.scores[i] for s in result.samples) for i in range(n)]


def test_same_seed_same_outputs_other_seed_differs(tiny_engine):
    settings = ScoreSettings(k=4, seed=11, max_tokens=24)
    a = score_record(_rec(3), tiny_engine, POINTWISE, settings)
    b = score_record(_rec(3), tiny_engine, POINTWISE, settings)
    assert [s.judgment.text for s in a.samples] == [s.judgment.text for s in b.samples]
    assert [s.order for s in a.samples] == [s.order for s in b.samples]
    c = score_record(_rec(3), tiny_engine, POINTWISE, ScoreSettings(k=4, seed=12, max_tokens=24))
    assert [s.judgment.text for s in a.samples] != [s.judgment.text for s in c.samples]


def test_default_temperature_is_greedy_for_one_sample_and_half_for_voting():
    assert ScoreSettings(k=1).effective_temperature == 0.0
    assert ScoreSettings(k=8).effective_temperature == 0.5
    assert ScoreSettings(k=8, temperature=0.9).effective_temperature == 0.9


def test_free_mode_records_parse_errors_not_zeros(tiny_engine):
    result = score_record(_rec(2), tiny_engine, POINTWISE, ScoreSettings(k=2, max_tokens=16, force_scores=False))
    for s in result.samples:
        assert s.scores is None and s.judgment.error and not s.forced_tail
        assert s.judgment.text  # the raw output is kept
    assert result.verdict.totals is None and result.verdict.best is None
    assert result.verdict.unparsed == 2 and result.verdict.votes == 0
    assert result.to_json()["correct"] is None  # no label


def test_judge_template_votes_one_per_sample(tiny_engine):
    result = score_record(_rec(3, preferred=1), tiny_engine, load_template("judge"), ScoreSettings(k=4, max_tokens=16))
    for s in result.samples:
        assert sorted(s.scores) == [0, 0, 1]
        assert 1 <= s.judgment.scores[0] <= 3
        assert s.scores[s.order[s.judgment.scores[0] - 1]] == 1
    assert sum(result.verdict.totals) == 4


def test_single_template_scores_zero_or_one(tiny_engine):
    result = score_record(_rec(1), tiny_engine, load_template("single"), ScoreSettings(k=3, max_tokens=16))
    assert all(s.scores[0] in (0, 1) for s in result.samples)


def test_given_principles_are_prefilled_and_recorded(tiny_engine):
    rec = _rec(2, principles="Correctness (Weight: 70%); Brevity (Weight: 30%)")
    result = score_record(rec, tiny_engine, POINTWISE, ScoreSettings(k=1, max_tokens=16), principles=rec.principles)
    s = result.samples[0]
    assert s.judgment.text.startswith("Specific Criteria: Correctness (Weight: 70%)")
    assert [c.weight for c in s.judgment.criteria] == [70.0, 30.0]
    assert result.to_json()["given_principles"] == rec.principles
    assert s.scores is not None


def test_prompt_that_does_not_fit_is_a_located_input_error(tiny_engine):
    long = record_from_dict({"prompt": "word " * 3000, "responses": ["a", "b"]}, "big.jsonl", 3)
    with pytest.raises(InputError) as e:
        ScoreJob(POINTWISE, ScoreSettings(max_tokens=64)).prepare([long], tiny_engine)
    assert str(e.value).startswith("big.jsonl:3:") and "--ctx" in str(e.value)
    with pytest.raises(ContextOverflow):
        tiny_engine.generate(GenerationRequest([{"role": "user", "content": "word " * 3000}], max_tokens=8))


def test_score_grammar_prefers_two_digit_alternatives():
    g = ScoreLine(2, 1, 10).grammar()
    assert g.startswith('root ::= num ", " num "}"') and '"10" | "1"' in g


def test_guided_regex_holds_the_count_and_the_range():
    import re

    rx = re.compile(ScoreLine(2, 1, 10).regex())
    assert rx.fullmatch("10, 3}") and rx.fullmatch("1, 1}")
    for bad in ("3}", "3, 4, 5}", "0, 3}", "11, 3}", "3, 4"):
        assert not rx.fullmatch(bad), bad
    assert re.compile(ScoreLine(1, 1, 4).regex()).fullmatch("4}") and not re.fullmatch(ScoreLine(1, 1, 4).regex(), "5}")


def test_forced_tail_trims_a_broken_score_line():
    tail = forced_tail(POINTWISE, 2)
    assert tail.trim("Analysis: fine.\nScores: \\boxed{x, x}") == "Analysis: fine."
    assert tail.is_complete("Scores: \\boxed{3, 9}") and not tail.is_complete("Scores: \\boxed{3}")
