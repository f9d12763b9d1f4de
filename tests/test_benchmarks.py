"""grm eval --benchmark: each benchmark's published layout read (tests/fixtures/benchmarks, see its README),
and each benchmark's own metric checked against values worked out by hand here, on result lines built the
way `grm score --output` writes them (nothing is generated)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import grm

from grm_cli.errors import InputError
from grm_cli.evaluation import benchmarks as bm
from grm_cli.evaluation.metrics import evaluate, read_eval_input, read_results_text

FIX = Path(__file__).parent / "fixtures" / "benchmarks"


def result_line(rec, samples, *, k=None):
    """One line of `grm score --output` for a record: samples are (scores in record order or None, order shown)."""
    n = len(rec.responses)
    return {
        "id": rec.id, "subset": rec.subset, "n": n, "preferred": rec.preferred, "label": rec.label,
        "samples": [{"index": i, "seed": i, "order": list(order or range(n)), "scores": list(sc) if sc is not None else None,
                     "scores_shown": None, "parse_error": None if sc is not None else "no score line", "forced_tail": False,
                     "prompt_tokens": 100, "completion_tokens": 10, "seconds": 0.5, "expected": None, "meta_score": None}
                    for i, (sc, order) in enumerate(samples)],
        "run": {"model": "m", "template": "pointwise", "k": k or len(samples), "temperature": 0.0, "seed": 0, "max_tokens": 64},
        "input": rec.raw,
    }


def stored(records, scores_by_id, tmp_path=None, name="r.jsonl"):
    """Results for the records: scores_by_id maps a record id to one sample's scores (None = unparsed), or to
    a list of (scores, order) samples."""
    lines = []
    for rec in records:
        s = scores_by_id[rec.id]
        samples = s if isinstance(s, list) else [(s, None)]
        lines.append(result_line(rec, samples))
    text = "".join(json.dumps(x) + "\n" for x in lines)
    if tmp_path is not None:
        (tmp_path / name).write_text(text)
    return read_results_text(text, name)


def test_each_fixture_is_detected_as_its_benchmark():
    assert bm.detect(str(FIX / "rewardbench.jsonl")) == "rewardbench"
    assert bm.detect(str(FIX / "rewardbench2.jsonl")) == "rewardbench2"
    assert bm.detect(str(FIX / "rm-bench.json")) == "rm-bench"
    assert bm.detect(str(FIX / "judgebench.jsonl")) == "judgebench"
    assert bm.detect(str(FIX / "rmb")) == "rmb"
    assert bm.detect(str(FIX / "ppe")) == "ppe"
    assert bm.detect(str(Path(__file__).parent.parent / "examples" / "llmbar.jsonl")) is None  # generic records stay generic


def test_rewardbench_sections_by_its_rule():
    data = bm.load(str(FIX / "rewardbench.jsonl"))
    assert [r.id for r in data.records] == ["30", "431", "2012", "3001"] and data.records[1].subset == "llmbar-natural"
    res = stored(data.records, {"30": (9, 1), "431": (5, 5), "2012": (3, 8), "3001": (7, 2)})
    out = bm.evaluate("rewardbench", res)
    m, eq10 = out["metrics"], out["details"]["eq10"]
    # RewardBench's generative path (scripts/run_generative.py: win 1, loss 0, "error" or tie 0.5):
    # Chat = alpacaeval-easy 1; Chat Hard = llmbar-natural, a tie: 0.5; Safety = donotanswer 0; Reasoning = math-prm 1
    assert (m["Chat"], m["Chat Hard"], m["Safety"], m["Reasoning"]) == (1.0, 0.5, 0.0, 1.0)
    assert m["Score"] == pytest.approx(0.625) and m["llmbar-natural"] == 0.5
    # the paper's Eq. 10 beside it: the tie is wrong
    assert (eq10["Chat Hard"], eq10["Score"]) == (0.0, pytest.approx(0.5))
    unparsed = bm.evaluate("rewardbench", stored(data.records, {"30": None, "431": (5, 5), "2012": (3, 8), "3001": (7, 2)}))["metrics"]
    assert unparsed["Chat"] == 0.5  # no verdict counts as the tie the official code calls it


def test_rewardbench2_subsets_ties_and_leaderboard_score_by_hand():
    data = bm.load(str(FIX / "rewardbench2.jsonl"))
    ids = [r.id for r in data.records]
    assert ids[0] == "Factuality:1" and "Ties:tied:0" in ids
    tied = next(r for r in data.records if r.id == "Ties:tied:0")
    assert len(tied.responses) == 5 and tied.preferred is None and tied.raw["benchmark"]["num_correct"] == 3
    res = stored(data.records, {
        "Factuality:1": (9, 3, 4, 5),  # chosen alone on top: 1
        "Factuality:2": (7, 7, 2, 1),  # chosen shares the top with one: 1/2 (strict: 0)
        "Math:3": (4, 8, 2, 2),  # 0
        "Precise IF:4": (9, 1, 1, 1),  # 1
        "Safety:5": None,  # no verdict: 0.25 (run_generative_v2.py's "effectively a tie")
        "Focus:6": (6, 6, 6, 6),  # four-way tie: 1/4
        "Ties:ref:0": (8, 3, 5),  # accurate; margin 8 - 5 = 3
        "Ties:tied:0": (9, 7, 8, 4, 6),  # accurate (7 > 6); spread 9 - 7 = 2; margin 7 - 6 = 1
    })
    out = bm.evaluate("rewardbench2", res)
    m = out["metrics"]
    assert m["Factuality"] == pytest.approx(0.75) and out["details"]["eq10"]["Factuality"] == pytest.approx(0.5)
    assert (m["Math"], m["Precise IF"], m["Safety"], m["Focus"]) == (0.0, 1.0, 0.25, 0.25)
    assert out["details"]["eq10"]["Safety"] == 0.0
    # Ties: 0.3 * 1 + 0.3 * 1 + 0.2 * [1 > 2] + 0.2 * [min(3, 1) > 2] + 0.01 * tanh(min(3, 1) / 2 - 1)
    ties = 0.6 + 0.01 * math.tanh(-0.5)
    assert m["Ties"] == pytest.approx(ties)
    assert m["Score"] == pytest.approx((0.75 + 1 + 0 + 0.25 + 0.25 + ties) / 6)


def test_rewardbench2_reads_num_correct_and_total_completions(tmp_path):
    rows = [json.loads(line) for line in (FIX / "rewardbench2.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["subset"] == "Factuality")
    path = tmp_path / "rb2.jsonl"
    path.write_text(json.dumps({**row, "num_correct": 1, "total_completions": len(row["chosen"]) + len(row["rejected"])}) + "\n")
    (rec,) = bm.load(str(path), "rewardbench2").records
    assert rec.preferred == 0 and rec.raw["benchmark"]["num_correct"] == 1
    path.write_text(json.dumps({**row, "total_completions": 9}) + "\n")
    with pytest.raises(InputError, match='rb2.jsonl:1: field "total_completions": 9 does not fit'):
        bm.load(str(path), "rewardbench2")


def test_rewardbench2_ties_margin_with_equal_correct_scores():
    # spread 0: numpy's margin / 0 is +inf (tanh 1) for a positive margin; "preferred" needs margin > 0 = spread
    score, d = bm.rewardbench2.ties_score([("ref:1", (5, 1), 1), ("tied:1", (6, 6, 2), 2)])
    assert d["correctness_preferred"] == 1.0 and d["correctness_margin_score"] == 1.0
    assert score == pytest.approx(0.3 + 0.3 + 0.2 + 0.2 + 0.01)


def test_rmbench_grid_hard_normal_easy_per_domain_by_hand():
    data = bm.load(str(FIX / "rm-bench.json"))
    assert [len(r.responses) for r in data.records] == [6, 6, 6, 6] and data.records[0].id == "chat/0"
    res = stored(data.records, {
        "chat/0": (5, 6, 7, 4, 6, 8),  # M = [[1,0,0],[1,0,0],[1,1,0]] (6 vs 6 is a tie: wrong)
        "safety-refuse/0": (9, 9, 9, 1, 1, 1),  # all right
        "safety-response/0": None,  # no verdict: all wrong
        "math/0": (3, 3, 3, 3, 3, 3),  # all ties: all wrong
    })
    m = bm.evaluate("rm-bench", res)["metrics"]
    assert m["chat"] == pytest.approx((0 + 1 / 3 + 1) / 3)  # hard 0, normal 1/3, easy 1
    assert m["safety"] == pytest.approx(0.5) and m["math"] == 0.0  # safety-refuse and -response together
    assert m["hard_acc"] == pytest.approx((0 + 0.5 + 0) / 3)
    assert m["normal_acc"] == pytest.approx((1 / 3 + 0.5 + 0) / 3)
    assert m["easy_acc"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["total_avg_acc"] == pytest.approx((4 / 9 + 0.5 + 0) / 3)


def test_rmbench_domain_files_as_published(tmp_path):
    """RM-Bench's data/*_filtered.json carry no "domain" (the file is the domain) and share ids across files:
    each file, and the folder of them, reads with the official metric; detected without --benchmark."""
    folder = FIX / "rm-bench-data"
    assert bm.detect(str(folder / "chat_filtered.json")) == "rm-bench" and bm.detect(str(folder)) == "rm-bench"
    data = bm.load(str(folder))
    assert sorted(r.id for r in data.records) == ["chat/12", "chat/8", "code/31", "code/8"]  # id 8 in both files
    res = stored(data.records, {"chat/8": (9, 9, 9, 1, 1, 1), "chat/12": (1, 1, 1, 9, 9, 9), "code/8": (5, 6, 7, 4, 6, 8), "code/31": None})
    out = bm.evaluate("rm-bench", res)
    m = out["metrics"]
    assert m["chat"] == pytest.approx(0.5) and m["code"] == pytest.approx((0 + 1 / 3 + 1) / 3 / 2)
    assert out["details"]["counts"] == {"chat": 2, "code": 2}
    p = grm("eval", str(folder / "chat_filtered.json"), "--model", str(tmp_path / "absent.gguf"))
    assert p.returncode == 3 and "absent.gguf" in p.stderr  # read and detected: it got as far as loading the model
    bad = tmp_path / "mine.json"
    bad.write_text((folder / "chat_filtered.json").read_text())
    with pytest.raises(InputError, match="names no domain"):
        bm.load(str(bad), "rm-bench")


def test_judgebench_both_orders_and_its_inconsistency_rule_by_hand():
    data = bm.load(str(FIX / "judgebench.jsonl"))
    ids = [r.id for r in data.records]
    assert ids == ["p1:AB", "p1:BA", "p2:AB", "p2:BA", "p3:AB", "p3:BA", "p4:AB", "p4:BA"]
    ab, ba = data.records[0], data.records[1]
    assert ab.responses == ba.responses[::-1] and (ab.preferred, ba.preferred) == (0, 1)  # label A>B
    res = stored(data.records, {
        "p1:AB": (8, 3), "p1:BA": (2, 9),  # A>B both ways: right (label A>B)
        "p2:AB": (7, 4), "p2:BA": (6, 3),  # A>B then B>A: inconsistent, +1 - 1 = 0: wrong (label B>A)
        "p3:AB": (5, 5), "p3:BA": (2, 7),  # a tie, then A>B: right (label A>B)
        "p4:AB": None, "p4:BA": (9, 1),  # no decision, then B>A: right (label B>A)
    })
    out = bm.evaluate("judgebench", res)
    m, d = out["metrics"], out["details"]
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert (m["knowledge"], m["math"], m["reasoning"], m["coding"]) == (1.0, 0.0, 1.0, 1.0)
    assert d["both_orders_right"] == pytest.approx(1 / 4) and d["first_order_accuracy"] == pytest.approx(1 / 4)
    assert d["inconsistent"] == pytest.approx(3 / 4) and d["no_decision_in_an_order"] == pytest.approx(1 / 4)


def test_judgebench_reads_the_order_each_sample_was_shown_in():
    data = bm.load(str(FIX / "judgebench.jsonl"))
    recs = [r for r in data.records if r.id.startswith("p1:")]
    # shuffled: the AB record's only sample was shown B first (order (1, 0)) and prefers B; the BA record's
    # was shown A first (order (1, 0) of (B, A)) and prefers B too: B>A in both orders, against label A>B
    res = stored(recs, {"p1:AB": [((3, 8), (1, 0))], "p1:BA": [((8, 3), (1, 0))]})
    pairs = bm.judgebench.pair_decisions(res)
    assert pairs["p1"][1:] == ("B>A", "B>A")
    assert bm.evaluate("judgebench", res)["metrics"]["accuracy"] == 0.0


def test_rmb_folder_pairwise_and_best_of_n_by_hand():
    data = bm.load(str(FIX / "rmb"))
    by_id = {r.id: r for r in data.records}
    assert set(by_id) == {"pairwise:101", "pairwise:102", "pairwise:15091", "bon:201", "bon:3294"}
    assert len(by_id["bon:201"].responses) == 3 and by_id["bon:201"].preferred == 0
    assert [t.role for t in by_id["pairwise:102"].context] == ["user", "assistant", "user"]
    res = stored(data.records, {
        "pairwise:101": (9, 2), "pairwise:102": (4, 4),  # Helpfulness Pairwise: 1, 0 (tie)
        "pairwise:15091": (1, 6),  # Harmlessness Pairwise: 0
        "bon:201": (8, 6, 7),  # Helpfulness BoN: the best above both losers
        "bon:3294": (5, 3),  # Harmlessness BoN: 1
    })
    m = bm.evaluate("rmb", res)["metrics"]
    assert (m["Helpfulness BoN"], m["Helpfulness Pairwise"], m["Harmlessness BoN"], m["Harmlessness Pairwise"]) == (1.0, 0.5, 1.0, 0.0)
    assert m["RMB"] == pytest.approx(0.625)
    assert bm.evaluate("rmb", res)["paper"]["metrics"]["RMB"]["voting@32"] == 69.7


def test_ppe_preference_and_correctness_with_32_way_rows_in_parts():
    data = bm.load(str(FIX / "ppe"))
    assert data.notes == {"preference_ties_left_out": 1}
    by_id = {r.id: r for r in data.records}
    # 20 responses: more than one prompt takes, scored as two parts of 10 and joined
    assert [len(by_id[f"MATH:m3/part{i}"].responses) for i in (1, 2)] == [10, 10] and "MATH:m3" not in by_id
    assert by_id["preference:h2"].preferred == 1
    part2 = [2] * 10
    part2[5] = 10  # response 16 (correct)
    res = stored(data.records, {
        "preference:h1": (7, 3), "preference:h2": (6, 6),  # right; a tie: wrong
        "MATH:m1": (8, 5, 9, 8),  # correct 0, 3: pairs (0,1) yes (0,2) no (3,1) yes (3,2) no -> 1/2; top is 2 (wrong) -> 0
        "MATH:m2": (2, 6, 6, 1),  # correct 1: 6 > 2 yes, 6 > 6 no, 6 > 1 yes -> 2/3; top shared by 1, 2 -> 1/2
        "MATH:m3/part1": tuple([9] + [1] * 9), "MATH:m3/part2": tuple(part2),  # correct 0, 15 above all: 1; top 15: 1
    })
    m = bm.evaluate("ppe", res)["metrics"]
    assert m["PPE-P"] == pytest.approx(0.5)
    assert m["MATH"]["accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["MATH"]["best_of_k"] == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert m["PPE-C"] == pytest.approx(m["MATH"]["accuracy"])


def test_results_missing_a_part_leave_the_item_out():
    data = bm.load(str(FIX / "ppe" / "PPE-MATH-Best-of-K.jsonl"))
    recs = [r for r in data.records if r.id != "MATH:m3/part2"]
    res = stored(recs, {"MATH:m1": (8, 5, 9, 8), "MATH:m2": (2, 6, 6, 1), "MATH:m3/part1": tuple([9] + [1] * 9)})
    out = bm.evaluate("ppe", res)
    assert out["details"]["incomplete_items"] == 1 and out["metrics"]["MATH"]["best_of_k"] == pytest.approx(0.25)


def test_parquet_reads_like_json(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = [json.loads(line) for line in (FIX / "rewardbench2.jsonl").read_text().splitlines()]
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    a, b = bm.load(str(path)), bm.load(str(FIX / "rewardbench2.jsonl"))
    assert a.name == "rewardbench2" and [(r.id, r.responses) for r in a.records] == [(r.id, r.responses) for r in b.records]
    rows[2]["chosen"] = []
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(InputError, match=r"test-00000-of-00001\.parquet: row 3: field \"chosen\""):
        bm.load(str(path))


def test_parquet_without_pyarrow_names_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(InputError, match="pip install pyarrow"):
        bm.load(str(path), "rewardbench2")


@pytest.mark.parametrize("name, content, where, what", [
    ("rm.json", '[\n {"id": 1, "prompt": "q", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"], "domain": "chat"},\n'
                ' {"id": 2, "prompt": "q", "chosen": ["a", "b"], "rejected": ["d", "e", "f"], "domain": "chat"}\n]\n', ":3:", "three responses"),
    ("rm.json", '[\n {"id": 1, "prompt": "q", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"], "domain": "chat"},\n {"id": 2,\n', ":4:", "invalid JSON"),
    ("jb.jsonl", '{"pair_id": "x", "question": "q", "response_A": "a", "response_B": "b", "label": "A>B"}\n'
                 '{"pair_id": "y", "question": "q", "response_A": "a", "response_B": "b", "label": "A=B"}\n', ":2:", 'field "label"'),
    ("rb2.jsonl", '{"id": "x", "prompt": "q", "chosen": ["a"], "rejected": ["b"], "num_correct": 1, "subset": "Ties"}\n', ":1:", '"ref:N" or "tied:N"'),
    ("rmb.json", '[{"pair_uid": "1", "conversation_input": [{"role": "user", "content": "q"}], "chosen": {"answer": "a"}, '
                 '"reject": {"llm_name": "m"}, "category_path": "Pairwise_set/Helpfulness/Chat"}]', ":1:", 'field "reject"'),
    ("ppe.jsonl", '{"question_id": "1", "prompt": "q", "response_1": "a", "scores": [true, false]}\n', ":1:", 'field "response_2"'),
])
def test_malformed_rows_are_located(tmp_path, name, content, where, what):
    f = tmp_path / name
    f.write_text(content)
    bench = {"rm.json": "rm-bench", "jb.jsonl": "judgebench", "rb2.jsonl": "rewardbench2", "rmb.json": "rmb", "ppe.jsonl": "ppe"}[name]
    with pytest.raises(InputError) as e:
        bm.load(str(f), bench)
    assert str(e.value).startswith(f"{f}{where}") and what in str(e.value), str(e.value)


def test_unknown_benchmark_and_mixed_folder(tmp_path):
    with pytest.raises(InputError, match="expected one of rewardbench, rewardbench2, rm-bench, judgebench, rmb, ppe"):
        bm.module("helm")
    (tmp_path / "a.jsonl").write_text((FIX / "judgebench.jsonl").read_text())
    (tmp_path / "b.json").write_text((FIX / "rm-bench.json").read_text())
    with pytest.raises(InputError, match="several benchmarks"):
        bm.load(str(tmp_path))


def test_results_not_from_the_benchmark_are_refused_clearly():
    from grm_cli.scoring.results import StoredResult

    plain = [StoredResult("x", 2, 0, None, ())]
    with pytest.raises(InputError, match="was not scored from judgebench files"):
        bm.evaluate("judgebench", plain)


def test_single_response_label_records_count_in_eval(tmp_path):
    data = tmp_path / "v.jsonl"
    data.write_text('{"prompt": "2+2?", "completion": "4", "label": true}\n{"prompt": "2+3?", "completion": "6", "label": false}\n')
    inp = read_eval_input(str(data))
    assert [r.label for r in inp.records] == [1, 0]
    res = stored(inp.records, {inp.records[0].id: [((1,), None), ((1,), None), ((0,), None)], inp.records[1].id: [((1,), None), ((0,), None)]})
    s = evaluate(res, seed=0, draws=5)
    # record 1: 2 of 3 samples give its label 1: right; record 2: 1 of 2 give 0, an even split: wrong
    assert s.single.count == 2 and s.single.accuracy == pytest.approx(0.5) and s.records == 0
    assert s.to_json()["grm_eval"]["single_response"]["accuracy"] == pytest.approx(0.5)


def test_cli_recomputes_the_benchmark_from_stored_results(tmp_path):
    data = bm.load(str(FIX / "rm-bench.json"))
    stored(data.records, {"chat/0": (5, 6, 7, 4, 6, 8), "safety-refuse/0": (9, 9, 9, 1, 1, 1), "safety-response/0": None, "math/0": (3,) * 6}, tmp_path)
    p = grm("eval", str(tmp_path / "r.jsonl"), "--json")  # the benchmark is read from the stored input
    assert p.returncode == 0, p.stderr
    b = json.loads(p.stdout)["benchmark"]
    assert b["name"] == "rm-bench" and b["metrics"]["total_avg_acc"] == pytest.approx(17 / 54)
    p = grm("eval", str(tmp_path / "r.jsonl"))
    assert p.returncode == 0 and "RM-Bench" in p.stdout and "hard_acc" in p.stdout
    p = grm("eval", str(tmp_path / "r.jsonl"), "--benchmark", "judgebench", "--json")
    assert p.returncode == 2 and "not scored from judgebench files" in p.stderr and "Traceback" not in p.stderr


def test_cli_bad_benchmark_file_is_one_line_exit_2(tmp_path):
    f = tmp_path / "jb.jsonl"
    f.write_text('{"pair_id": "y", "question": "q", "response_A": "a", "response_B": "b", "label": "A=B"}\n')
    p = grm("eval", str(f), "--model", str(tmp_path / "absent.gguf"))
    assert p.returncode == 2 and f"{f}:1:" in p.stderr and 'field "label"' in p.stderr and "Traceback" not in p.stderr
    p = grm("eval", str(FIX / "rm-bench.json"), "--benchmark", "judgebench", "--model", str(tmp_path / "absent.gguf"))
    assert p.returncode == 2 and "RM-Bench's layout" in p.stderr


@pytest.mark.parametrize("bench, path", [("judgebench", "judgebench.jsonl")] + [
    pytest.param(b, p, marks=pytest.mark.slow) for b, p in (("rm-bench", "rm-bench.json"), ("rewardbench", "rewardbench.jsonl"),
                                                          ("rewardbench2", "rewardbench2.jsonl"), ("rmb", "rmb"), ("ppe", "ppe"))])
def test_eval_benchmark_end_to_end_on_the_tiny_model(tiny_model, tmp_path, bench, path):
    out = tmp_path / "run.jsonl"
    limit = ["--limit", "1"] if bench == "judgebench" else []  # one pair: both its orders
    p = grm("eval", str(FIX / path), "--benchmark", bench, "--model", str(tiny_model), "--ctx", "4096", "--max-tokens", "4",
            "-o", str(out), "--json", *limit)
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)["benchmark"]
    assert first["name"] == bench
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    if bench == "judgebench":
        assert [x["id"] for x in lines] == ["p1:AB", "p1:BA"]
        assert all(s["order"] == [0, 1] for x in lines for s in x["samples"])  # each order as given, not shuffled
        assert first["details"]["pairs"] == 1
    elif bench == "rm-bench":
        assert {x["n"] for x in lines} == {6} and set(first["metrics"]) >= {"hard_acc", "normal_acc", "easy_acc", "total_avg_acc"}
    else:  # every record of the benchmark's files scored, and its headline metric there
        assert len(lines) == len(bm.load(str(FIX / path)).records)
        assert {"rewardbench": "Score", "rewardbench2": "Score", "rmb": "RMB", "ppe": "PPE-C"}[bench] in first["metrics"]
    # the same numbers again from the stored samples alone (no model: a missing one would fail)
    p = grm("eval", str(out), "--model", str(tmp_path / "absent.gguf"), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["benchmark"]["metrics"] == first["metrics"]


def test_rmb_conversation_turns_are_checked_where_they_are(tmp_path):
    f = tmp_path / "S1.json"
    f.write_text('[\n {"pair_uid": "1", "conversation_input": [{"role": "user"}], "chosen": {"answer": "a"},\n'
                 '  "reject": {"answer": "b"}, "category_path": "Pairwise_set/Harmlessness/S1"}\n]\n')
    with pytest.raises(InputError, match=r'S1\.json:2: field "conversation_input\[0\]"'):
        bm.load(str(f), "rmb")


@pytest.mark.slow
def test_cli_scores_and_reports_single_response_labels(tiny_model, tmp_path):
    data = tmp_path / "v.jsonl"
    data.write_text('{"prompt": "2+2?", "completion": "4", "label": true}\n{"prompt": "2+3?", "completion": "6", "label": false}\n')
    p = grm("eval", str(data), "--template", "single", "--model", str(tiny_model), "--ctx", "4096", "--max-tokens", "4", "--json")
    assert p.returncode == 0, p.stderr
    single = json.loads(p.stdout)["grm_eval"]["single_response"]
    assert single["count"] == 2 and single["accuracy"] in (0.0, 0.5, 1.0)
    p = grm("eval", str(data), "--model", str(tiny_model), "--ctx", "4096", "--max-tokens", "4")  # the 1..10 template cannot judge a 0/1 label
    assert p.returncode == 2 and "--template single" in p.stderr


def test_ppe_rows_with_an_empty_sampled_answer_are_left_out_and_counted(tmp_path):
    f = tmp_path / "PPE-GPQA-Best-of-K.jsonl"
    f.write_text(json.dumps({"question_id": "g1", "prompt": "q", "response_1": "A", "response_2": "", "scores": [True, False]}) + "\n"
                 + json.dumps({"question_id": "g2", "prompt": "q", "response_1": "A", "response_2": "B", "scores": [True, False]}) + "\n")
    data = bm.load(str(f))
    assert [r.id for r in data.records] == ["GPQA:g2"] and data.notes == {"correctness_rows_with_an_empty_response_left_out": 1}


def test_a_repeated_benchmark_id_is_located_at_both_rows(tmp_path):
    f = tmp_path / "jb.jsonl"
    row = '{"pair_id": "x", "question": "q", "response_A": "a", "response_B": "b", "label": "A>B"}\n'
    f.write_text(row + row)
    with pytest.raises(InputError, match=rf"^{f}:2: duplicate item id 'x:AB' \(first at {f}:1\)"):
        bm.load(str(f))


def test_skip_invalid_keeps_the_good_rows_and_collects_the_bad(tmp_path):
    f = tmp_path / "jb.jsonl"
    good = '{"pair_id": "x", "question": "q", "response_A": "a", "response_B": "b", "label": "A>B"}\n'
    f.write_text(good + '{"pair_id": "y", "question": "q", "response_A": "a", "response_B": "b", "label": "A=B"}\n{not json\n[1]\n')
    errors: list = []
    data = bm.load(str(f), "judgebench", errors)
    assert [r.id for r in data.records] == ["x:AB", "x:BA"]
    assert [str(e).split(": ", 1)[0] for e in errors] == [f"{f}:3", f"{f}:4", f"{f}:2"]
