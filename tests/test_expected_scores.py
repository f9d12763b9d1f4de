"""Expected scores (--score-mode expected): where the scores sit in a sample, the model's probability of
every allowed value there (checked against llama.cpp's own logits), and voting on them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import EXAMPLES, grm

from grm_cli.core.prompt import load_template
from grm_cli.core.score_line import score_spans
from grm_cli.io.jsonl import read_records
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.results import result_from_json
from grm_cli.scoring.settings import ScoreSettings, run_signature

MSGS = [{"role": "user", "content": "Rate the answers to 2+2 from 1 to 10. Answer 1: 4. Answer 2: 5."}]
TEXT = "Specific Criteria: correctness.\nAnalysis: answer 1 is right.\nScores: \\boxed{9, 10}"


def test_score_spans_point_at_the_last_box():
    text = "Scores: \\boxed{1, 2} then again Scores: \\boxed{ 7,10 }"
    assert [text[a:b] for a, b in score_spans(text)] == ["7", "10"]
    assert score_spans("no box") == [] and score_spans("\\boxed{3, 4") == []


@pytest.fixture(scope="module")
def probe(tiny_engine):
    from grm_cli.engine.probe import ScoreProbe

    return ScoreProbe(tiny_engine, 1, 10, n_ctx=8192)


def test_expected_values_are_in_range_and_do_not_depend_on_what_came_before(tiny_engine, probe):
    from grm_cli.engine.probe import ScoreProbe

    spans = score_spans(TEXT)
    other = TEXT.replace("right", "wrong").replace("{9, 10}", "{2, 8}")
    first = probe.expected(MSGS, TEXT, spans)
    probe.expected(MSGS, other, score_spans(other))
    assert probe.expected(MSGS, TEXT, spans) == first
    assert ScoreProbe(tiny_engine, 1, 10, n_ctx=8192).expected(MSGS, TEXT, spans) == first
    assert len(first) == 2 and all(1.0 <= x <= 10.0 for x in first)


def test_the_distribution_follows_llama_cpps_logits(tiny_engine, probe):
    """At the first score: values 2..9 are single tokens, so their probabilities must keep the ratios of the
    model's own next-token probabilities, read here from a plain llama.cpp evaluation of the same tokens."""
    from llama_cpp import Llama

    (start, _), _ = score_spans(TEXT)
    base = tiny_engine.tokenize(tiny_engine.render(MSGS, TEXT[:start]))
    lp = probe._extend(base, 0)
    dist = probe._distribution(base, 0, lp)
    assert math.isclose(sum(dist.values()), 1.0, rel_tol=1e-9)
    ref = Llama(model_path=str(tiny_engine.path), n_ctx=1024, logits_all=True, verbose=False)
    ref.eval(base)
    logits = np.array(ref.scores[len(base) - 1], dtype=np.float64)
    tok = {v: probe.cand[str(v)][0] for v in range(2, 10)}
    for a, b in [(2, 3), (4, 9), (5, 7)]:
        assert math.isclose(dist[str(a)] / dist[str(b)], math.exp(logits[tok[a]] - logits[tok[b]]), rel_tol=1e-3)
    # "1" and "10" share the first token: together they hold exactly its share
    one = probe.cand["1"][0]
    assert probe.cand["10"][0] == one
    assert math.isclose((dist["1"] + dist["10"]) / dist["2"], math.exp(logits[one] - logits[tok[2]]), rel_tol=1e-3)


def test_voting_on_expected_scores(tiny_engine, probe):
    tmpl = load_template("pointwise")
    recs = read_records(str(EXAMPLES / "llmbar.jsonl"))[:2]
    settings = ScoreSettings(k=2, max_tokens=8, score_mode="expected")
    results = list(score_records(recs, tiny_engine, tmpl, settings, probe=probe))
    for r in results:
        parsed = [s for s in r.samples if s.expected is not None]
        assert parsed and all(s.scores is not None for s in parsed)
        assert r.verdict.totals == tuple(sum(s.expected[i] for s in parsed) for i in range(2))
        line = r.to_json()
        assert line["run"]["score_mode"] == "expected" and line["samples"][0]["expected"] is not None
        stored = result_from_json(line)
        assert stored.samples[0].scores == tuple(line["samples"][0]["expected"])  # eval votes what the run voted
    assert "score_mode" not in run_signature("m", "pointwise", ScoreSettings())
    with pytest.raises(ValueError):
        list(score_records(recs, tiny_engine, tmpl, settings))  # expected mode without a probe


@pytest.mark.slow
def test_score_mode_expected_from_the_command_line(tiny_model):
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "-k", "2", "--max-tokens", "8", "--score-mode", "expected", "--json")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(lines) == 8 and all(isinstance(x["scores"][0], float) for x in lines)
    bad = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--template", "judge", "--score-mode", "expected")
    assert bad.returncode == 2 and "names the best response" in bad.stderr
    bad = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--score-mode", "expected", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1")
    assert bad.returncode == 2 and "--backend llama" in bad.stderr


def test_float_totals_do_not_depend_on_the_order_samples_are_added():
    from grm_cli.core.voting import vote

    a, b, c = (6.6, 1.0), (7.1, 1.0), (9.0, 1.0)
    assert vote([a, b, c], 2).totals == vote([c, b, a], 2).totals == (22.7, 3.0)


@pytest.mark.slow
def test_an_expected_mode_file_is_not_resumed_in_sampled_mode(tiny_model, tmp_path):
    out = tmp_path / "exp.jsonl"
    base = ["score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "-k", "2", "--max-tokens", "4", "-o", str(out)]
    first = grm(*base, "--score-mode", "expected")
    assert first.returncode == 0, first.stderr
    before = out.read_text()
    again = grm(*base)
    assert again.returncode == 2 and "score_mode: 'expected' there, not set now" in again.stderr
    assert out.read_text() == before
