"""How `grm view` holds up on a big run: a results file of N records x k samples (default 10,000 x 8, texts
about as long as SmolLM2's) written through the real writer, the report written by `grm view`, then opened in
headless chromium (Debian's, through Playwright) and timed: to the summary, the record list, a filter, a text
search, a sort, a record page. The figures on docs/commands/view.md come from this script; the suite's test
checks the same behaviour on 2,500 records without timing it.

    .venv/bin/python benchmarks/bench_view.py [--records 10000] [-k 8] [--text 1.6]

Beside the report it times what a user would do without one: reading every line of the results file with
`json.loads` (what `jq` or a notebook does first), so the ratio says what opening the page costs over that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CHROMIUM = os.environ.get("GRM_CHROMIUM", "/usr/bin/chromium")


def timed(step):
    started = time.perf_counter()
    out = step()
    return time.perf_counter() - started, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--text", type=float, default=1.6, help="text length scale (1.6: samples of about SmolLM2's 1,000 characters)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from test_view import synthetic_run, write_results

    from grm_cli.report import read_run, write_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = synthetic_run(args.records, args.k, seed=1, text=args.text)
        data = write_results(tmp / "big.jsonl", results)
        report = tmp / "big.html"
        t_view, _ = timed(lambda: write_report([read_run(str(data))], report))  # what `grm view big.jsonl` does
        t_json, _ = timed(lambda: [json.loads(line) for line in data.open(encoding="utf-8")])
        print(f"{args.records:,} records x k = {args.k}: results file {data.stat().st_size / 1e6:.1f} MB, report {report.stat().st_size / 1e6:.1f} MB, "
              f"grm view {t_view:.1f} s; {os.cpu_count()} CPUs", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t_open, _ = timed(lambda: (page.goto(report.resolve().as_uri()), page.wait_for_selector("body[data-ready='1']", state="attached", timeout=600_000)))

            def records():
                page.evaluate("location.hash = '#records'")
                page.wait_for_selector(".rec-row")

            def choose(sel, value):
                page.select_option(sel, value)
                page.wait_for_function("() => document.querySelector('#count') !== null")

            t_list, _ = timed(records)
            t_filter, _ = timed(lambda: choose("#f-status", "wrong"))
            choose("#f-status", "")
            t_search, _ = timed(lambda: (page.fill("#f-q", "concise"), page.press("#f-q", "Enter")))
            page.fill("#f-q", "")
            page.press("#f-q", "Enter")
            t_sort, _ = timed(lambda: page.click("th.sortable"))
            t_record, _ = timed(lambda: (page.click(".rec-row a"), page.wait_for_selector(".sample")))
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
            browser.close()
        rows = [("open to the summary", t_open), ("the record list", t_list), ("a filter (status: wrong)", t_filter), ("a text search", t_search),
                ("a sort", t_sort), ("a record page", t_record)]
        for name, t in rows:
            print(f"  {name:<26} {t:6.2f} s")
        print(f"  JavaScript heap            {heap / 1e6:.0f} MB" if heap else "  JavaScript heap            (not reported)")
        print(f"  reading the results file with json.loads, line by line (the no-report baseline): {t_json:.2f} s; "
              f"opening the report takes {t_open / t_json:.1f}x that")


if __name__ == "__main__":
    main()
