"""`grm view` and `grm eval --report` without a browser: the report's data model, the page's walls, the command.

Results here are written by the real writer (`ScoreResult.to_json` through `ResultsFile`) from hand-made
samples, so every verdict is known; tests/test_view_browser.py opens such pages in chromium.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
from conftest import grm

from grm_cli.core.judgment import Judgment, parse_criteria
from grm_cli.core.records import Record, Turn
from grm_cli.core.voting import vote
from grm_cli.errors import InputError
from grm_cli.io.results import ResultsFile
from grm_cli.report import check_report_path, default_report_path, read_run, write_report
from grm_cli.report.model import report_data
from grm_cli.report.page import asset, data_json, render_page
from grm_cli.scoring.results import SampleResult, ScoreResult
from grm_cli.scoring.settings import ScoreSettings

HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1"></script><!-- \u2028 & "quotes"'


# -- results written by the real writer ------------------------------------------------------------
def sample(j: int, order, shown, *, principles="Accuracy (weight 60%)\nClarity (weight 40%)", critique="Response A is right; B is not.",
           forced=False, meta=None, kept=None, verdict=None, calls=(), error="no \\boxed{...} score line in the output") -> SampleResult:
    """One sample: `shown` are the scores in the order shown (None: unparsed); they are mapped back to the record's order."""
    order = tuple(order)
    scores = None if shown is None else tuple(shown[order.index(i)] for i in range(len(order)))
    box = "" if shown is None else "\nScores: \\boxed{" + ", ".join(map(str, shown)) + "}"
    text = f"Specific Criteria: {principles}\nAnalysis: {critique}{box}"
    judgment = Judgment(text, tuple(shown) if shown is not None else None, None if shown is not None else error, principles, critique, parse_criteria(principles), verdict)
    return SampleResult(j, 1000 + j, order, judgment, scores, forced, 120, 40, 0.25, meta_score=meta, meta_kept=kept, calls=tuple(calls))


def result(rid: str, samples, *, preferred=0, responses=("Paris.", "Lyon."), prompt="What is the capital of France?", subset="geo",
           model="judge-a", protocol=None, stopped_by=None, k=None, k_meta=None) -> ScoreResult:
    """A record's result as scoring writes it; with k_meta, voted as meta-RM-guided voting votes: the kept samples only."""
    raw = {"id": rid, "prompt": prompt, "responses": list(responses), "preferred": preferred, "subset": subset}
    rec = Record(rid, (Turn("user", prompt),), tuple(responses), preferred, subset=subset, raw=raw)
    settings = ScoreSettings(k=k or len(samples), temperature=0.5, adaptive="exact" if stopped_by else None, k_meta=k_meta, meta_rm="metarm.json" if k_meta else None)
    verdict = vote([s.scores for s in samples if k_meta is None or s.meta_kept], len(responses))
    return ScoreResult(rec, tuple(samples), verdict, model, protocol or "pointwise", settings, stopped_by=stopped_by, protocol=protocol)


@contextmanager
def no_fsync():
    """The writer fsyncs every line (a kill loses at most one); a test file of thousands of lines needs no such care."""
    with mock.patch("grm_cli.io.results.os.fsync"):
        yield


def write_results(path: Path, results) -> Path:
    with no_fsync(), ResultsFile(path, force=True) as f:
        for r in results:
            f.write(r.to_json())
    return path


def hand_run() -> list[ScoreResult]:
    """Known verdicts: right, wrong, a tie, no verdict (all unparsed), right with one unparsed sample, a forced line."""
    return [
        result("right", [sample(0, (0, 1), (8, 3)), sample(1, (1, 0), (2, 9))]),
        result("wrong", [sample(0, (0, 1), (2, 7)), sample(1, (1, 0), (6, 5))]),
        result("tie", [sample(0, (0, 1), (5, 5)), sample(1, (1, 0), (6, 6))]),
        result("nothing-parsed", [sample(0, (0, 1), None), sample(1, (1, 0), None)], subset="other"),
        result("one-unparsed", [sample(0, (0, 1), (9, 1)), sample(1, (1, 0), None)], subset="other"),
        result("forced", [sample(0, (1, 0), (4, 8), forced=True), sample(1, (0, 1), (7, 3))], preferred=0, subset="other"),
    ]


def synthetic_run(n: int, k: int, *, seed: int = 0, text: float = 1, model="judge-a") -> list[ScoreResult]:
    """n records of k samples with a spread of verdicts (some unparsed, some ties); `text` scales every text's length.
    The samples are drawn from a pool of distinct ones (a 10,000 × 8 run is written in seconds, not minutes)."""
    rng = random.Random(seed)
    words = "the response answers the question correctly but misses a step and cites no source while the other is concise".split()

    def prose(count):
        return " ".join(rng.choices(words, k=max(1, round(count * text))))

    pool = []
    for j in range(min(n * k, 400)):
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        shown = None if rng.random() < 0.05 else (rng.randint(1, 10), rng.randint(1, 10))
        principles = "\n".join(f"{prose(4)} (weight {w}%)" for w in (40, 35, 25))
        pool.append(sample(j, order, shown, principles=principles, critique=prose(90)))
    out = []
    for i in range(n):
        samples = [replace(rng.choice(pool), index=j, seed=1000 * i + j) for j in range(k)]
        out.append(result(f"rec-{i:05d}", samples, preferred=rng.randint(0, 1), subset=f"subset-{i % 5}", prompt=prose(50),
                          responses=(prose(100), prose(100)), model=model))
    return out


@pytest.fixture
def hand_file(tmp_path) -> Path:
    return write_results(tmp_path / "hand.jsonl", hand_run())


# -- the data model --------------------------------------------------------------------------------
def test_statuses_count_what_grm_eval_counts(tmp_path):
    path = write_results(tmp_path / "r.jsonl", synthetic_run(120, 4, seed=3))
    run = read_run(str(path))
    recs = report_data([run], title="t")["runs"][0]["records"]
    overall = run.summary.overall
    by = {s: sum(r["status"] == s for r in recs) for s in ("right", "wrong", "tie", "none")}
    assert by["right"] == round(overall.strict * overall.count)
    assert by["tie"] == round(overall.tie_rate * overall.count)
    assert by["none"] == round(overall.no_verdict_rate * overall.count)
    picked_right = sum(r["status"] == "tie" and r["pick"] == r["preferred"] for r in recs)
    assert by["right"] + picked_right == round(overall.accuracy * overall.count)


def test_every_verdict_by_hand(hand_file):
    recs = {r["id"]: r for r in report_data([read_run(str(hand_file))], title="t")["runs"][0]["records"]}
    assert recs["right"]["status"] == "right" and recs["right"]["totals"] == [17, 5] and recs["right"]["best"] == 0
    assert recs["wrong"]["status"] == "wrong" and recs["wrong"]["margin"] == 6
    assert recs["tie"]["status"] == "tie" and recs["tie"]["tied"] == [0, 1] and recs["tie"]["pick"] in (0, 1)
    nothing = recs["nothing-parsed"]
    assert nothing["status"] == "none" and nothing["totals"] is None and nothing["unparsed"] == 2 and nothing["votes"] == 0
    assert [s["scores"] for s in nothing["samples"]] == [None, None]  # unparsed: never a 0
    assert "no \\boxed" in nothing["samples"][0]["error"] and "Specific Criteria" in nothing["samples"][0]["text"]
    one = recs["one-unparsed"]
    assert one["status"] == "right" and one["unparsed"] == 1 and one["votes"] == 1
    forced = recs["forced"]["samples"][0]
    assert forced["forced"] is True and forced["order"] == [1, 0] and forced["shown"] == [4, 8] and forced["scores"] == [8, 4]


def test_a_sample_keeps_its_parts_and_drops_the_text_they_repeat(hand_file):
    s = report_data([read_run(str(hand_file))], title="t")["runs"][0]["records"][0]["samples"][0]
    assert s["criteria"] == [["Accuracy", 60.0], ["Clarity", 40.0]]
    assert s["critique"] == "Response A is right; B is not." and "text" not in s
    assert s["tokens"] == [120, 40] and s["seed"] == 1000


def test_pairwise_and_absolute_samples_keep_their_verdicts_and_calls(tmp_path):
    calls = [{"shown": [0], "verdict": "4", "parse_error": None, "forced_tail": False, "text": "good [RESULT] 4", "prompt_tokens": 9, "completion_tokens": 3},
             {"shown": [1], "verdict": None, "parse_error": "no [RESULT]", "forced_tail": False, "text": "rambling", "prompt_tokens": 9, "completion_tokens": 3}]
    runs = [
        result("pair", [sample(0, (0, 1), (1, 0), principles=None, critique="A is better.", verdict="A")], protocol="mt-bench-pairwise"),
        result("abs", [sample(0, (0, 1), (4, 2), principles=None, critique="[response 1] good", verdict="4, 2", calls=calls)], protocol="prometheus-absolute"),
    ]
    data = report_data([read_run(str(write_results(tmp_path / "p.jsonl", runs)))], title="t")
    pair, absolute = (r["samples"][0] for r in data["runs"][0]["records"])
    assert data["runs"][0]["protocol"] == "mt-bench-pairwise"
    assert pair["verdict"] == "A" and pair["scores"] == [1, 0] and "principles" not in pair and pair["criteria"] == []
    assert absolute["verdict"] == "4, 2" and [c["verdict"] for c in absolute["calls"]] == ["4", None]
    assert "text" not in absolute["calls"][0] and absolute["calls"][1]["text"] == "rambling"  # the raw text where it failed


def test_a_meta_guided_run_keeps_its_own_vote_beside_the_vote_of_all_samples(tmp_path):
    guided = result("g", [sample(0, (0, 1), (3, 6), meta=0.9, kept=True), sample(1, (0, 1), (9, 1), meta=0.2, kept=False),
                          sample(2, (1, 0), (2, 7), meta=0.1, kept=False)], k_meta=1)
    rec = report_data([read_run(str(write_results(tmp_path / "g.jsonl", [guided])))], title="t")["runs"][0]["records"][0]
    assert rec["guided"] == {"k_meta": 1, "totals": [3, 6], "best": 1, "tied": []}
    assert rec["totals"] == [19, 9] and rec["status"] == "right"  # all samples, as grm eval's accuracy counts them
    assert [s["kept"] for s in rec["samples"]] == [True, False, False] and rec["samples"][0]["meta"] == 0.9


def test_two_runs_share_their_inputs_and_get_distinct_names(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_results(tmp_path / "a" / "results.jsonl", hand_run())
    b = write_results(tmp_path / "b" / "results.jsonl", [result("right", [sample(0, (0, 1), (1, 9))], model="judge-b")])
    data = report_data([read_run(str(a)), read_run(str(b))], title="t")
    assert [r["name"] for r in data["runs"]] == ["a/results", "b/results"]
    assert data["runs"][0]["records"][0]["input"] == data["runs"][1]["records"][0]["input"]  # one stored copy
    assert len(data["inputs"]) == 1  # every record of both runs judged the same question and answers: stored once


def test_chosen_rejected_and_messages_inputs_read_as_records(tmp_path):
    r = result("trl", [sample(0, (0, 1), (8, 2))]).to_json()
    r["input"] = {"id": "trl", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"}
    odd = dict(r, id="odd", input={"something": "else"})
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(r) + "\n" + json.dumps(odd) + "\n")
    data = report_data([read_run(str(path))], title="t")
    first, second = (data["inputs"][x["input"]] for x in data["runs"][0]["records"])
    assert first == {"context": [["system", "Be brief."], ["user", "2+2?"]], "responses": ["4", "5"]}
    assert json.loads(second["raw"]) == {"something": "else"} and second["responses"] == []


# -- reading files ---------------------------------------------------------------------------------
def test_a_foreign_or_malformed_line_is_a_file_line_error(hand_file, tmp_path):
    lines = hand_file.read_text().splitlines()
    records = tmp_path / "mixed.jsonl"
    records.write_text(lines[0] + "\n" + json.dumps({"prompt": "q", "responses": ["a", "b"]}) + "\n")
    with pytest.raises(InputError, match=re.escape(f"{records}:2: not a results line")):
        read_run(str(records))
    torn = tmp_path / "torn.jsonl"
    torn.write_text(lines[0] + "\n" + lines[1][:40] + "\n")
    with pytest.raises(InputError, match=re.escape(f"{torn}:2: invalid JSON")):
        read_run(str(torn))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(dict(json.loads(lines[0]), samples=[{"scores": [1, 2, 3]}])) + "\n")
    with pytest.raises(InputError, match=re.escape(f"{broken}:1:")):
        read_run(str(broken))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no results"):
        read_run(str(empty))


def test_a_record_knows_its_line_in_the_file(hand_file):
    lines = hand_file.read_text().splitlines()
    hand_file.write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n")
    recs = report_data([read_run(str(hand_file))], title="t")["runs"][0]["records"]
    assert [r["line"] for r in recs] == [1, 3, 4, 5, 6, 7]


def test_the_summary_is_grm_evals(hand_file):
    p = grm("eval", hand_file, "--json")
    assert p.returncode == 0, p.stderr
    assert read_run(str(hand_file)).summary.to_json() == json.loads(p.stdout)


def test_an_eval_summary_is_a_run_without_records(hand_file, tmp_path):
    summary = tmp_path / "s.json"
    summary.write_text(grm("eval", hand_file, "--json").stdout)
    run = read_run(str(summary))
    assert run.lines == () and run.summary.overall.count == 6
    assert report_data([run], title="t")["runs"][0]["records"] == []


def test_unlabelled_results_get_a_summary_without_accuracy(tmp_path):
    path = write_results(tmp_path / "u.jsonl", [result("u", [sample(0, (0, 1), (7, 3))], preferred=None)])
    run = read_run(str(path))
    assert run.summary.overall.count == 0 and run.summary.overall.accuracy is None
    assert report_data([run], title="t")["runs"][0]["records"][0]["status"] == "unlabelled"


# -- the page's walls ------------------------------------------------------------------------------
DATA_BLOCK = re.compile(r'<script type="application/json" (?:id="grm-data"|class="grm-(records|inputs)"(?: data-run="(\d+)")?)>(.*?)</script>', re.S)


def page_data(page: str) -> dict:
    """The data a page holds, put together as its script puts it together: the frame, then the blocks of records and inputs."""
    data = None
    for kind, run, text in DATA_BLOCK.findall(page):
        assert "<" not in text
        if not kind:
            data = json.loads(text)
        elif kind == "records":
            data["runs"][int(run)]["records"] += json.loads(text)
        else:
            data["inputs"] += json.loads(text)
    return data


def test_no_data_can_close_the_script_block_and_the_json_reads_back(tmp_path):
    runs = [result("x", [sample(0, (0, 1), (8, 2), critique=HOSTILE + "broken LONE surrogate")], prompt=HOSTILE, responses=(HOSTILE, "</SCRIPT >"), subset="<!--")]
    path = write_results(tmp_path / "h.jsonl", runs)
    path.write_text(path.read_text().replace("LONE", "\\ud800"))  # JSON may escape a lone surrogate; UTF-8 cannot carry one
    run = read_run(str(path))
    data = report_data([run], title=HOSTILE)
    page = render_page(data, HOSTILE)
    assert page.lower().count("</script") == page.count("<script") == 4  # the frame, records, inputs and the page's script: nothing else
    assert "<!--" not in page and "<img" not in page
    back = page_data(page)  # no "<" in any data block
    assert back == json.loads(json.dumps(data))
    assert back["runs"][0]["records"][0]["samples"][0]["critique"].endswith("\ud800 surrogate")
    page.encode("utf-8")  # no lone surrogate reaches the file
    assert "<title>&lt;script&gt;" in page


def test_big_runs_are_cut_into_blocks_the_page_puts_together(tmp_path, monkeypatch):
    monkeypatch.setattr("grm_cli.report.page.CHUNK_CHARS", 4000)
    run = read_run(str(write_results(tmp_path / "r.jsonl", synthetic_run(30, 2, text=0.3))))
    data = report_data([run, run], title="t")
    page = render_page(data, "t")
    assert page.count('class="grm-records" data-run="1"') > 3 and page.count('class="grm-inputs"') > 1
    assert page_data(page) == json.loads(json.dumps(data))


def test_nan_becomes_null():
    assert json.loads(data_json({"a": float("nan"), "b": [float("inf"), 1.5]})) == {"a": None, "b": [None, 1.5]}


def test_the_policy_admits_only_the_pages_own_script_and_style():
    page = render_page({"title": "t", "generated": "", "statuses": [], "runs": [], "inputs": []}, "t")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    rules = dict((part.split(" ", 1) + [""])[:2] for part in policy.split("; "))
    assert rules["default-src"] == "'none'" and rules["img-src"] == "data:" and rules["base-uri"] == "'none'" and rules["form-action"] == "'none'"

    def digest(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert rules["script-src"] == digest(script) and rules["style-src"] == digest(style)
    assert "unsafe" not in policy and "http" not in policy
    assert page.index("Content-Security-Policy") < page.index("<style>")  # in force before anything it governs


def test_the_page_is_built_from_text_nodes_only():
    script = asset("view.js")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function", script)
    assert "textContent" in script and "createTextNode" in script


def test_the_assets_ship_in_the_package_and_are_not_ignored_by_git():
    from importlib.resources import files

    root = Path(__file__).resolve().parent.parent
    for name in ("view.js", "view.css"):
        assert files("grm_cli.report").joinpath("assets", name).is_file()
        ignored = os.system(f"git -C {root} check-ignore -q grm_cli/report/assets/{name}")
        assert ignored != 0, f"{name} is git-ignored: the wheel would not ship it"


# -- the command -----------------------------------------------------------------------------------
def test_view_writes_next_to_the_results_and_never_overwrites(hand_file, tmp_path):
    p = grm("view", hand_file, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["report"] == str(tmp_path / "hand.html") and out["runs"][0]["records"] == 6 and out["runs"][0]["samples"] == 12
    assert (tmp_path / "hand.html").stat().st_size == out["bytes"]
    p = grm("view", hand_file)
    assert p.returncode == 2 and "exists: a report is never overwritten" in p.stderr and "--force" in p.stderr
    before = (tmp_path / "hand.html").stat().st_mtime_ns
    assert grm("view", hand_file, "--force").returncode == 0 and (tmp_path / "hand.html").stat().st_mtime_ns >= before
    p = grm("view", hand_file, "-o", hand_file, "--force")
    assert p.returncode == 2 and "a report never replaces the results" in p.stderr
    assert json.loads(hand_file.read_text().splitlines()[0])["id"] == "right"


def test_default_names_and_refusals(tmp_path):
    assert default_report_path(["runs/a.jsonl"]) == Path("runs/a.html")
    assert default_report_path(["runs/a.jsonl", "other/b.jsonl"]) == Path("runs/a-vs-b.html")
    assert default_report_path([f"r{i}.jsonl" for i in range(5)]) == Path("r0-vs-r1-vs-r2-and-2-more.html")
    with pytest.raises(InputError, match="stdin"):
        default_report_path(["-"])
    with pytest.raises(InputError, match="is a directory"):
        check_report_path(tmp_path)
    with pytest.raises(InputError, match="--report is the results file"):
        check_report_path(tmp_path / "x.jsonl", [str(tmp_path / "x.jsonl")], flag="--report")


def test_view_open_hands_the_file_to_the_browser(hand_file, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert grm("view", hand_file, "-o", tmp_path / "r.html", "--open").returncode == 0
    assert opened == [(tmp_path / "r.html").resolve().as_uri()]


def test_eval_report_carries_evals_summary_and_checks_its_path_first(hand_file, tmp_path):
    report = tmp_path / "e.html"
    p = grm("eval", hand_file, "--json", "--report", report)
    assert p.returncode == 0, p.stderr
    data = page_data(report.read_text())
    assert data["runs"][0]["summary"] == json.loads(p.stdout) and len(data["runs"][0]["records"]) == 6
    p = grm("eval", hand_file, "--report", report)
    assert p.returncode == 2 and "exists" in p.stderr
    p = grm("eval", hand_file, "--report", hand_file, "--force")
    assert p.returncode == 2 and "--report is the results file" in p.stderr
    p = grm("eval", hand_file, "--report", tmp_path / "out.jsonl", "-o", tmp_path / "out.jsonl")
    assert p.returncode == 2 and "--report is the results file" in p.stderr


def test_write_report_is_a_library_call(hand_file, tmp_path):
    written = write_report([read_run(str(hand_file))], tmp_path / "deep" / "r.html", title="mine")
    assert written.path.read_text().startswith("<!DOCTYPE html>") and "<title>mine</title>" in written.path.read_text()
    assert not list((tmp_path / "deep").glob(".*.tmp"))
