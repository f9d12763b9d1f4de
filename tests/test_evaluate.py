"""Every eval metric on hand-made results whose right answers are worked out by hand here."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import grm

from grm_cli.core.rules import break_tie
from grm_cli.errors import InputError
from grm_cli.evaluation.metrics import (
    EvalSummary,
    accuracy,
    curve_ks,
    evaluate,
    first_shown_wins,
    position_consistency,
    read_eval_input,
    rewardbench_sections,
    scaling_curve,
)
from grm_cli.scoring.results import StoredResult, StoredSample


def rec(rid, n, preferred, samples, subset=None, orders=None):
    orders = orders or [tuple(range(n))] * len(samples)
    return StoredResult(
        rid, n, preferred, subset,
        tuple(StoredSample(tuple(s) if s is not None else None, tuple(o), forced_tail=s is None, prompt_tokens=100, completion_tokens=10, seconds=1.0) for s, o in zip(samples, orders)),
        model="m", template="pointwise",
    )


HAND = [
    rec("r1", 2, 0, [(8, 5), (7, 6)], "a", [(0, 1), (1, 0)]),  # totals 15 vs 11: right; orders differ, both pick 0
    rec("r2", 2, 1, [(5, 5)], "a"),  # a tie: strict wrong
    rec("r3", 2, 0, [None, None], "a"),  # nothing parsed: no verdict, wrong
    rec("r4", 3, 2, [(3, 4, 9), (2, 8, 7)], "b", [(0, 1, 2), (2, 1, 0)]),  # totals 5, 12, 16: right; single picks 2 vs 1
    rec("r5", 3, 0, [(9, 1, 1), None], "b"),  # one parsed sample: 9, 1, 1: right
]


def test_accuracy_strict_ties_and_no_verdict_by_hand():
    acc = accuracy(HAND, seed=0)
    assert acc.count == 5
    assert acc.strict == pytest.approx(3 / 5)
    assert acc.tie_rate == pytest.approx(1 / 5)
    assert acc.no_verdict_rate == pytest.approx(1 / 5)
    r2_right = break_tie((5, 5), 0, "r2") == 1
    assert acc.accuracy == pytest.approx((3 + r2_right) / 5)


def test_tie_break_is_a_seeded_fair_pick_among_the_tied():
    picks = [break_tie((7, 3, 7), seed, "x") for seed in range(400)]
    assert set(picks) == {0, 2}
    assert 0.4 < picks.count(0) / 400 < 0.6
    assert break_tie((7, 3, 7), 5, "x") == break_tie((7, 3, 7), 5, "x")
    assert break_tie((1, 9, 2), 5, "x") == 1


def test_many_ties_give_about_half_accuracy_but_zero_strict():
    ties = [rec(f"t{i}", 2, 0, [(6, 6)]) for i in range(300)]
    acc = accuracy(ties, seed=1)
    assert acc.strict == 0.0 and acc.tie_rate == 1.0
    assert 0.4 < acc.accuracy < 0.6


def test_summary_subsets_best_of_n_and_diagnostics_by_hand():
    s = evaluate(HAND, seed=0, draws=50)
    assert s.records == 5 and s.k == 2
    assert s.subsets["a"].strict == pytest.approx(1 / 3) and s.subsets["b"].strict == 1.0
    assert s.best_of_n.strict == 1.0 and s.best_of_n.count == 2
    assert s.pairwise.strict == pytest.approx(1 / 3) and s.pairwise.count == 3
    d = s.diagnostics
    assert d["samples"] == 9
    assert d["parse_failure_rate"] == pytest.approx(3 / 9)
    assert d["forced_tail_rate"] == pytest.approx(3 / 9)
    assert d["position_consistency"] == pytest.approx(1 / 2)  # r1 agrees, r4 does not
    assert d["mean_margin_per_sample"] == pytest.approx((4 / 2 + 0 / 1 + 4 / 2 + 8 / 1) / 4)
    assert d["prompt_tokens_per_record"] == pytest.approx(9 * 100 / 5)
    assert d["seconds_per_record"] == pytest.approx(9 / 5)


def test_first_shown_wins_counts_the_unique_top_against_the_order_it_was_shown_in():
    # scores are in record order; order[0] is the record index shown first
    biased = rec("b", 2, 0, [(9, 1), (1, 9), (5, 5), None], orders=[(0, 1), (1, 0), (0, 1), (1, 0)])
    assert first_shown_wins([biased]) == (pytest.approx(2 / 3), pytest.approx(1 / 2))  # the tie and the unparsed one do not win
    three = rec("t", 3, 2, [(1, 2, 9)], orders=[(2, 0, 1)])
    assert first_shown_wins([biased, three]) == (pytest.approx(3 / 4), pytest.approx((3 * 0.5 + 1 / 3) / 4))
    assert first_shown_wins([rec("u", 2, 0, [None])]) == (None, None)
    d = evaluate([biased, three]).diagnostics
    assert d["first_shown_wins_rate"] == pytest.approx(3 / 4) and d["first_shown_chance"] == pytest.approx((1.5 + 1 / 3) / 4)


def test_position_consistency_ignores_pairs_in_the_same_order_and_counts_ties_as_disagreement():
    same_order = rec("s", 2, 0, [(9, 1), (1, 9)])
    assert position_consistency([same_order]) is None
    tie = rec("t", 2, 0, [(5, 5), (9, 1)], orders=[(0, 1), (1, 0)])
    assert position_consistency([tie]) == 0.0


def test_unlabelled_and_single_response_records_are_left_out_and_counted():
    rows = HAND + [rec("u", 2, None, [(1, 2)]), rec("one", 1, 0, [(5,)])]
    s = evaluate(rows, seed=0, draws=10)
    assert s.records == 5 and s.diagnostics["unlabelled_records_skipped"] == 2
    with pytest.raises(InputError):
        evaluate([rec("u", 2, None, [(1, 2)])])


def test_rewardbench_sections_weight_by_example_counts():
    rows = [rec(f"n{i}", 2, 0, [(9, 1)], "llmbar-natural") for i in range(3)] + [rec("h", 2, 0, [(1, 9)], "mt-bench-hard")]
    s = evaluate(rows, seed=0, draws=10)
    assert s.sections == {"Chat Hard": pytest.approx(100 / (100 + 37))}
    full = {name: accuracy([rec("x", 2, 0, [(9, 1)])]) for name in ("alpacaeval-easy", "llmbar-natural", "donotanswer", "math-prm")}
    full["hep-go"] = accuracy([rec("y", 2, 0, [(1, 9)])])
    secs = rewardbench_sections(full)
    assert secs["Reasoning"] == pytest.approx(984 / (984 + 164))
    assert secs["Score"] == pytest.approx((1 + 1 + 1 + 984 / 1148) / 4)


def test_curve_points_and_k_equals_K_is_plain_voting():
    assert curve_ks(1) == [1] and curve_ks(5) == [1, 2, 4, 5] and curve_ks(8) == [1, 2, 4, 8]
    s = evaluate(HAND, seed=3, draws=30)
    last = s.curve[-1]
    assert last.k == 2 and last.accuracy == pytest.approx(s.overall.accuracy) and last.low == last.high
    # One right and one wrong sample per record: voting@1 is right half the time, on average.
    half = [rec(f"h{i}", 2, 0, [(9, 1), (1, 9)]) for i in range(40)]
    c1 = scaling_curve(half, seed=0, draws=400)[0]
    assert c1.k == 1 and c1.accuracy == pytest.approx(0.5, abs=0.03) and c1.low < 0.5 < c1.high
    assert scaling_curve(half, seed=0, draws=50) == scaling_curve(half, seed=0, draws=50)


def test_summary_json_is_rewardbench_shaped_and_round_trips(tmp_path):
    s = evaluate(HAND, seed=0, draws=10, name="run")
    j = s.to_json()
    assert j["model"] == "m" and j["model_type"] == "Generative RM" and j["k"] == 2
    assert j["a"] == s.subsets["a"].accuracy and j["b"] == 1.0
    f = tmp_path / "sum.json"
    f.write_text(json.dumps(j, indent=2))
    back = read_eval_input(str(f))
    assert back.kind == "summary"
    assert back.summary.overall == s.overall and back.summary.curve == s.curve
    with pytest.raises(InputError):
        EvalSummary.from_json({"grm_eval": {}}, "bad.json")


def test_eval_input_kinds_and_label_errors(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "responses": ["a", "b"]}\n')
    with pytest.raises(InputError) as e:
        read_eval_input(str(data))
    assert str(e.value).startswith(f"{data}:2:") and "preferred" in str(e.value)
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    assert read_eval_input(str(data)).kind == "records"


@pytest.mark.slow
def test_eval_from_stored_results_generates_nothing_and_plots(tiny_model, tmp_path):
    from conftest import EXAMPLES

    results = tmp_path / "r.jsonl"
    p = grm("eval", str(EXAMPLES / "llmbar.jsonl"), "-k", "3", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "4", "-o", str(results), "--json")
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    assert first["k"] == 3 and first["grm_eval"]["records"] == 8
    assert [c["k"] for c in first["grm_eval"]["curve"]] == [1, 2, 3]
    # From the stored samples: no model is loaded (a missing one would be an error), same numbers.
    png = tmp_path / "c.png"
    p = grm("eval", str(results), "--model", str(tmp_path / "absent.gguf"), "--json", "--plot", str(png))
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["grm_eval"]["overall"] == first["grm_eval"]["overall"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Two runs side by side.
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps(first))
    p = grm("eval", str(summary), str(results))
    assert p.returncode == 0 and "Accuracy" in p.stdout and "s" in p.stdout and "r" in p.stdout


def test_plot_without_matplotlib_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: `import matplotlib` raises ImportError
    s = evaluate(HAND, seed=0, draws=5)
    f = tmp_path / "s.json"
    f.write_text(json.dumps(s.to_json()))
    p = grm("eval", f, "--plot", tmp_path / "x.png")
    assert p.returncode == 2 and "pip install 'grm-cli[plot]'" in p.stderr and "Traceback" not in p.stderr


def test_a_speed_log_is_named_as_such(tmp_path):
    from grm_cli.evaluation.metrics import read_eval_input

    log = tmp_path / "run.jsonl.runs.jsonl"
    log.write_text('{"finished": "2026-11-26T07:00:00+00:00", "records": 8, "requests": 16, "wall_seconds": 8.7}\n')
    with pytest.raises(InputError, match="is a speed log"):
        read_eval_input(str(log))
