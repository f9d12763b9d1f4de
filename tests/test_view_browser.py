"""`grm view`'s page in a real browser: Debian's chromium driven headless by Playwright (no browser download).

Set GRM_CHROMIUM to use a chromium elsewhere than /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import EXAMPLES, grm
from test_view import HOSTILE, hand_run, result, sample, synthetic_run, write_results

CHROMIUM = os.environ.get("GRM_CHROMIUM", "/usr/bin/chromium")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip("grm view browser tests: playwright is not installed (pip install 'grm-cli[test]')", allow_module_level=True)
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"grm view browser tests: no chromium at {CHROMIUM} (apt-get install chromium, or set GRM_CHROMIUM)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Tab:
    """A page of the browser that records what the report asks of the network and any script error."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.requests: list[str] = []
        self.opened: set[str] = set()
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def open(self, path: Path) -> "Tab":
        url = path.resolve().as_uri()
        self.opened.add(url)
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
        return self

    def go(self, hash_: str) -> None:
        self.page.evaluate("h => { location.hash = h }", hash_)
        self.page.wait_for_function("h => location.hash === h", arg=hash_)

    def count(self) -> int:
        return int(self.page.get_attribute("#count", "data-count"))

    def metric(self, name: str, run: int = 0) -> float | None:
        value = self.page.get_attribute(f'.metric[data-metric="{name}"][data-run="{run}"]', "data-value")
        return float(value) if value else None

    def choose(self, selector: str, value: str) -> None:
        self.page.select_option(selector, value)


@pytest.fixture
def tab(browser):
    t = Tab(browser)
    yield t
    t.page.close()
    assert not t.errors, t.errors
    assert set(t.requests) <= t.opened, t.requests  # a report loads nothing but itself


def view(tmp_path: Path, *results_files: Path, name: str = "report.html", draws: int = 20) -> Path:
    """`grm view` in this process (fewer draws per curve point than the default 200 where the curve is not the point)."""
    out = tmp_path / name
    p = grm("view", *results_files, "-o", out, "--draws", draws)
    assert p.returncode == 0, p.stderr
    return out


@pytest.mark.slow
def test_a_real_run_on_the_tiny_model_summary_filter_and_record(tiny_model, tmp_path, tab):
    results, report = tmp_path / "run.jsonl", tmp_path / "run.html"
    p = grm("eval", EXAMPLES / "llmbar.jsonl", "--limit", "4", "-k", "2", "--model", tiny_model, "--ctx", "8192", "--max-tokens", "4",
            "-o", results, "--report", report, "--json")
    assert p.returncode == 0, p.stderr
    scored = json.loads(p.stdout)
    again = json.loads(grm("eval", results, "--json").stdout)
    again["grm_eval"]["name"] = scored["grm_eval"]["name"]  # named after the data file, then after the results file
    assert again == scored
    g = scored["grm_eval"]
    for page in (report, view(tmp_path, results, draws=200)):
        tab.open(page)
        assert tab.metric("records") == g["records"] == 4
        for name in ("accuracy", "strict_accuracy", "tie_rate", "no_verdict_rate"):
            assert tab.metric(f"overall.{name}") == pytest.approx(g["overall"][name], abs=1e-12), name
        for name in ("parse_failure_rate", "forced_tail_rate", "first_shown_wins_rate", "first_shown_chance"):
            assert tab.metric(f"diagnostics.{name}") == pytest.approx(g["diagnostics"][name], abs=1e-12), name
        for subset, acc in g["subsets"].items():
            assert tab.metric(f"subsets.{subset}.accuracy") == pytest.approx(acc["accuracy"], abs=1e-12)
        points = tab.page.eval_on_selector_all("#curve circle.point", "cs => cs.map(c => [Number(c.dataset.k), Number(c.dataset.accuracy)])")
        assert points == [[p["k"], pytest.approx(p["accuracy"], abs=1e-12)] for p in g["curve"]]
    tab.go("#records")
    assert tab.count() == 4
    tab.choose("#f-status", "right")
    assert tab.count() == round(g["overall"]["strict_accuracy"] * 4)
    tab.choose("#f-status", "")
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    tab.page.click(f'.rec-row[data-id="{lines[0]["id"]}"] a')
    tab.page.wait_for_selector(".sample")
    assert tab.page.inner_text("#record-id") == lines[0]["id"]
    cards = tab.page.query_selector_all(".sample")
    assert len(cards) == len(lines[0]["samples"]) == 2
    for card, s in zip(cards, lines[0]["samples"]):
        text = card.inner_text()
        assert "shown: " + ", ".join(f"#{i}" for i in s["order"]) in text
        if s["scores"] is None:
            assert "unparsed" in text
        else:
            assert "as written (in the order shown): " + ", ".join(map(str, s["scores_shown"])) in text
            mapped = card.eval_on_selector_all("table.mapped tbody td:nth-child(3)", "tds => tds.map(td => Number(td.textContent))")
            assert mapped == s["scores"]


def test_filters_sorting_and_pages(tmp_path, tab, monkeypatch):
    monkeypatch.setattr("grm_cli.report.page.CHUNK_CHARS", 50_000)  # records in several blocks, as in a big run
    path = write_results(tmp_path / "r.jsonl", synthetic_run(250, 2, seed=5))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    tab.open(view(tmp_path, path)).go("#records")
    assert tab.page.evaluate("document.querySelectorAll('script.grm-records').length") > 3
    assert tab.count() == 250 and len(tab.page.query_selector_all(".rec-row")) == 100
    tab.page.click("#next-page")
    assert tab.page.get_attribute(".rec-row", "data-id") == "rec-00100"
    tab.choose("#f-subset", "subset-2")
    assert tab.count() == 50
    tab.choose("#f-status", "tie")
    ties = [x for x in lines if x["subset"] == "subset-2" and x["tie"]]
    assert tab.count() == len(ties) and sorted(tab.page.eval_on_selector_all(".rec-row", "rs => rs.map(r => r.dataset.id)")) == sorted(x["id"] for x in ties)
    tab.choose("#f-status", "")
    tab.choose("#f-subset", "")
    tab.choose("#f-unparsed", "some")
    assert tab.count() == sum(x["unparsed"] > 0 for x in lines)
    tab.choose("#f-unparsed", "")
    tab.page.fill("#f-mmin", "10")
    assert tab.count() == sum((x["margin"] or 0) >= 10 for x in lines)
    tab.page.fill("#f-mmin", "")
    tab.page.click('th[data-sort="margin"]')
    tab.page.click('th[data-sort="margin"]')  # a second click sorts the other way: largest first
    top = tab.page.get_attribute(".rec-row", "data-id")
    assert next(x for x in lines if x["id"] == top)["margin"] == max(x["margin"] or 0 for x in lines)
    needle = lines[17]["samples"][1]["critique"][:40]
    tab.page.fill("#f-q", needle)
    tab.page.press("#f-q", "Enter")
    assert tab.count() == sum(needle.lower() in json.dumps(x, ensure_ascii=False).lower() for x in lines) >= 1


def test_a_record_page_shows_every_part_of_every_sample(tmp_path, tab):
    meta = result("meta", [sample(0, (1, 0), (4, 8), forced=True, meta=0.91, kept=True), sample(1, (0, 1), (7, 3), meta=0.12, kept=False),
                           sample(2, (0, 1), None)], responses=("A long answer.", "A short one."), k_meta=2)
    path = write_results(tmp_path / "r.jsonl", [*hand_run(), meta])
    tab.open(view(tmp_path, path)).go("#record/meta")
    tab.page.wait_for_selector(".sample")
    cards = tab.page.query_selector_all(".sample")
    assert len(cards) == 3
    first, second, third = (c.inner_text() for c in cards)
    assert "shown: #1, #0" in first and "forced score line" in first and "meta-RM 0.910 · kept" in first
    assert "Accuracy 60%" in first.replace("\n", " ") and "Clarity 40%" in first.replace("\n", " ")
    assert "Response A is right; B is not." in first and "as written (in the order shown): 4, 8" in first
    assert cards[0].eval_on_selector_all("table.mapped tbody tr", "rs => rs.map(r => [...r.children].map(c => c.textContent))") == [["#0 (label)", "2nd", "8"], ["#1", "1st", "4"]]
    assert "meta-RM 0.120 · left out" in second
    assert "unparsed: no \\boxed{...} score line in the output" in third and "never counted as a 0" in third
    assert "A long answer." in tab.page.inner_text(".input") and "labelled best" in tab.page.text_content('.response[data-index="0"]')
    grid = tab.page.eval_on_selector_all("table.scores tbody tr", "rs => rs.map(r => [...r.children].map(c => c.textContent))")
    assert grid == [["#0 (label)", "8", "7", "–", "15"], ["#1", "4", "3", "–", "7"]]
    assert "The run's own vote summed only the 2 samples the meta RM rated best: best #0 (totals 8, 4)" in tab.page.inner_text(".run-panel")
    tab.page.keyboard.press("k")  # the previous record of the list
    tab.page.wait_for_function("() => document.querySelector('#record-id').textContent === 'forced'")


def test_hostile_text_stays_text_and_nothing_runs_or_loads(tmp_path, tab):
    evil = result("evil<script>", [sample(0, (0, 1), (8, 2), principles=HOSTILE + " (weight 100%)", critique=HOSTILE)], prompt=HOSTILE,
                  responses=(HOSTILE, '<a href="http://example.com/x">x</a><iframe src="http://example.com"></iframe>'), subset=HOSTILE, model=HOSTILE)
    path = write_results(tmp_path / "r.jsonl", [evil, *hand_run()])
    tab.open(view(tmp_path, path))
    for where in ("#summary", "#records", "#record/" + "evil%3Cscript%3E"):
        tab.go(where)
        tab.page.wait_for_timeout(50)
        assert tab.page.evaluate("window.pwned") is None
    body = tab.page.inner_text("body")
    assert "<script>window.pwned=1</script>" in body and '<img src=x onerror="window.pwned=1">' in body
    assert tab.page.evaluate("document.images.length + document.querySelectorAll('iframe, script:not([type]), a[href^=http]').length") == 1  # the page's own script
    tab.go("#records")
    tab.page.fill("#f-q", "<script>window.pwned")
    tab.page.press("#f-q", "Enter")
    assert tab.count() == 1
    # The policy, not only the care: a script the page did not ship does not run, a fetch does not leave.
    blocked = tab.page.evaluate("""async () => {
        const s = document.createElement('script'); s.textContent = 'window.pwned = 2'; document.body.appendChild(s);
        let fetched = 'sent';
        try { await fetch('http://127.0.0.1:9/x'); } catch (e) { fetched = 'blocked'; }
        return [window.pwned === undefined, fetched];
    }""")
    assert blocked == [True, "blocked"]
    tab.errors[:] = [e for e in tab.errors if "Content Security Policy" not in e and "Failed to fetch" not in e]


def test_two_runs_side_by_side_show_where_verdicts_differ(tmp_path, tab):
    a = write_results(tmp_path / "a.jsonl", hand_run())
    flipped = {"right": [sample(0, (0, 1), (2, 9))], "tie": [sample(0, (0, 1), (9, 2))], "wrong": [sample(0, (0, 1), (1, 8)), sample(1, (1, 0), (6, 5))]}
    b_results = [result(r.record.id, flipped.get(r.record.id, list(r.samples)), preferred=r.record.preferred, subset=r.record.subset, model="judge-b") for r in hand_run()]
    b = write_results(tmp_path / "b.jsonl", [*b_results, result("only-in-b", [sample(0, (0, 1), (3, 4))])])
    tab.open(view(tmp_path, a, b)).go("#compare")
    assert tab.page.get_attribute('td[data-metric="differ"][data-a="0"][data-b="1"]', "data-value") == "2"  # right and tie changed; wrong did not
    tab.page.click("#show-differ")
    tab.page.wait_for_selector("#count")
    assert tab.count() == 2
    assert sorted(tab.page.eval_on_selector_all(".rec-row", "rs => rs.map(r => r.dataset.id)")) == ["right", "tie"]
    tab.page.click('.rec-row[data-id="right"] a')
    tab.page.wait_for_selector(".run-panel")
    panels = tab.page.query_selector_all(".run-panel")
    assert len(panels) == 2 and "best: response #0" in panels[0].inner_text() and "best: response #1" in panels[1].inner_text()
    tab.go("#records")
    tab.page.uncheck("#f-differ")
    tab.choose("#f-run", "1")
    assert tab.count() == 7  # run b's records, its own one included


@pytest.mark.slow
def test_a_big_run_opens_pages_and_filters(tmp_path, tab):
    """2,500 records of 8 samples: the list pages by 100, filters count right, a record page is built when opened.
    10,000 x 8 with real-length texts is what benchmarks/bench_view.py times (docs/commands/view.md)."""
    results = synthetic_run(2_500, 8, seed=1, text=0.05)
    path = write_results(tmp_path / "big.jsonl", results)
    tab.open(view(tmp_path, path)).go("#records")
    assert tab.count() == 2_500 and len(tab.page.query_selector_all(".rec-row")) == 100
    wrong = [r for r in results if r.verdict.totals is not None and not r.verdict.is_tie and not r.correct]
    tab.choose("#f-status", "wrong")
    assert tab.count() == len(wrong)
    tab.choose("#f-subset", "subset-3")
    assert tab.count() == sum(r.record.subset == "subset-3" for r in wrong)
    tab.page.click(".rec-row a")
    tab.page.wait_for_selector(".sample")
    assert len(tab.page.query_selector_all(".sample")) == 8
