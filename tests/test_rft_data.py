"""Rejective fine-tuning data: the paper's keep/drop rules on hand-made samples, hinted prompts, and the
command end to end on the tiny model (resumable)."""

from __future__ import annotations

import json

from conftest import EXAMPLES, grm

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import load_template
from grm_cli.core.records import Record, Turn
from grm_cli.core.voting import vote
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.results import SampleResult, ScoreResult
from grm_cli.scoring.settings import ScoreSettings
from grm_cli.train.rft_data import decide

T = load_template("pointwise")


def rec(preferred=1) -> Record:
    return Record(id="r", context=(Turn("user", "2+2?"),), responses=("5", "4"), preferred=preferred)


def sample(i, scores, order=(0, 1)) -> SampleResult:
    j = Judgment(text=f"Specific Criteria: sample {i}\nScores: ...", scores=tuple(scores) if scores else None, principles=f"sample {i}")
    return SampleResult(i, 100 + i, order, j, tuple(scores) if scores else None, False, 10, 10, 0.1)


def result(samples, r=None) -> ScoreResult:
    r = r or rec()
    return ScoreResult(r, tuple(samples), vote([s.scores for s in samples], 2), "m", "pointwise", ScoreSettings(k=len(samples)))


def test_all_right_is_too_easy_and_gives_nothing():
    d = decide(T, result([sample(0, (2, 9)), sample(1, (1, 8)), sample(2, (3, 7))]), None)
    assert d.status == "too_easy" and d.examples == () and d.right == 3 and d.wrong == 0


def test_wrong_ties_and_unparsed_are_rejected_right_ones_kept():
    d = decide(T, result([sample(0, (2, 9), (1, 0)), sample(1, (5, 5)), sample(2, None)]), None)
    assert d.status == "kept" and d.right == 1 and d.wrong == 2
    (ex,) = d.examples
    assert ex["completion"] == [{"role": "assistant", "content": "Specific Criteria: sample 0\nScores: ..."}]
    assert ex["order"] == [1, 0] and ex["hinted"] is False
    user = ex["prompt"][0]["content"]
    assert user.index("[The Begin of Response 1]\n4") < user.index("[The Begin of Response 2]\n5")  # the order the sample saw


def test_hinted_sample_is_kept_only_if_right_and_trained_without_the_hint():
    unhinted = result([sample(0, (9, 2)), sample(1, (8, 3)), sample(2, (7, 7))])
    good = decide(T, unhinted, result([sample(3, (1, 9))]))
    assert good.status == "kept" and good.hinted_kept is True
    (ex,) = good.examples
    assert ex["hinted"] and ex["sample"] == 3 and "The best response is" not in ex["prompt"][0]["content"]
    bad = decide(T, unhinted, result([sample(3, (9, 1))]))
    assert bad.status == "nothing_right" and bad.hinted_kept is False and bad.examples == ()


def test_hinted_prompts_name_the_best_in_the_shown_order(tiny_engine):
    r = rec(preferred=1)
    hinted = list(score_records([r], tiny_engine, T, ScoreSettings(k=2, max_tokens=4, hint=True, first_sample=3, temperature=0.5)))[0]
    assert [s.index for s in hinted.samples] == [3, 4]  # fresh sample indices, so fresh seeds
    plain = list(score_records([r], tiny_engine, T, ScoreSettings(k=5, max_tokens=4, temperature=0.5)))[0]
    assert [s.seed for s in hinted.samples] == [s.seed for s in plain.samples[3:]]


def test_rft_data_command_end_to_end_and_resume(tiny_model, tmp_path):
    out = tmp_path / "rft.jsonl"
    args = ["train", "rft-data", str(EXAMPLES / "llmbar.jsonl"), "-o", str(out), "--model", str(tiny_model),
            "--ctx", "8192", "--max-tokens", "8", "-k", "3"]
    p = grm(*args)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 8 and {x["status"] for x in lines} <= {"kept", "too_easy", "nothing_right"}
    for x in lines:
        assert x["right"] + x["wrong"] == 3
        assert (x["status"] == "too_easy") == (x["wrong"] == 0)
        for e in x["examples"]:
            assert "The best response is" not in e["prompt"][0]["content"] and e["completion"][0]["role"] == "assistant"
            assert e["scores"] is not None
    assert "records:" in p.stderr and "examples" in p.stderr
    again = grm(*args)
    assert again.returncode == 0 and "skipping 8 records already in" in again.stderr
    assert [json.loads(x) for x in out.read_text().splitlines()] == lines
