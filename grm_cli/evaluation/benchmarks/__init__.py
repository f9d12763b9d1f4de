"""The standard reward benchmarks: each one's files as published in, its own metric out.

One module per benchmark (rewardbench, rewardbench2, rmbench, judgebench, rmb, ppe), each with NAME,
TITLE, RULE, `matches(row)` (is this row in my layout), `records(rows)` (grm records carrying the
benchmark's ids and subsets) and `metrics(results)` (the benchmark's numbers under its own names, from
stored results: nothing is generated again). Correctness always goes through `core.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from grm_cli.errors import InputError
from grm_cli.evaluation.benchmarks import judgebench, ppe, rewardbench, rewardbench2, rmb, rmbench
from grm_cli.evaluation.benchmarks.common import check_unique
from grm_cli.evaluation.benchmarks.files import data_files, fetch_hf_dataset, first_row, read_rows
from grm_cli.scoring.results import StoredResult

MODULES = {m.NAME: m for m in (rewardbench2, rmbench, judgebench, rmb, ppe, rewardbench)}
NAMES = ("rewardbench", "rewardbench2", "rm-bench", "judgebench", "rmb", "ppe")

# DeepSeek-GRM-27B's published numbers (SPCT paper, arXiv 2504.02495 v3, Tables 2/3/7), in %, for the
# benchmarks the paper reports, keyed by the metric they stand beside.
PAPER_RUNS = ("greedy", "voting@32", "MetaRM + voting@32")
PAPER = {
    "rewardbench": {"Score": (86.0, 88.5, 90.4)},
    "ppe": {"PPE-P": (64.7, 65.3, 67.2), "PPE-C": (59.8, 60.4, 63.2)},
    "rmb": {"RMB": (69.0, 69.7, 70.3)},
}


@dataclass
class BenchmarkData:
    name: str
    source: str
    records: list
    notes: dict = field(default_factory=dict)


def module(name: str):
    if name not in MODULES:
        raise InputError(f"--benchmark {name!r}: expected one of {', '.join(NAMES)}")
    return MODULES[name]


def detect_row(row: dict | None) -> str | None:
    if not isinstance(row, dict):
        return None
    return next((name for name, m in MODULES.items() if m.matches(row)), None)


def local_path(path: str) -> str:
    """hf://datasets/... downloaded (or found in the hub cache); anything else as given."""
    return str(fetch_hf_dataset(path)) if path.startswith("hf://") else path


def detect(path: str) -> str | None:
    """The benchmark a local file or folder holds, when its first row says so unambiguously; else None."""
    if path == "-":
        return None
    names = {detect_row(first_row(f)) for f in data_files(path)}
    if len(names) == 1:
        return names.pop()
    if None not in names and len(names) > 1:
        raise InputError(f"holds files of several benchmarks ({', '.join(sorted(names))}): give one benchmark's files per run", path)
    return None


def load(path: str, name: str | None = None, errors: list | None = None) -> BenchmarkData:
    """A benchmark's file or folder (local, or an hf:// dataset path already made local) as grm records.
    With an `errors` list (--skip-invalid), a malformed row is collected there and the others are kept."""
    files = data_files(path)
    if name is None:
        name = detect(path)
        if name is None:
            raise InputError(f"not in a benchmark layout grm knows: give --benchmark ({', '.join(NAMES)})", path)
    mod = module(name)
    rows = [row for f in files for row in read_rows(f, errors)]
    if not rows and not errors:
        raise InputError(f"no rows: the {mod.TITLE} file is empty", path)
    if errors is None:
        records, notes = mod.records(rows)
    else:
        records, notes = [], {}
        for row in rows:
            try:
                got, more = mod.records([row])
            except InputError as e:
                errors.append(e)
                continue
            records += got
            for k, v in more.items():
                notes[k] = notes.get(k, 0) + v
    if not records:
        raise InputError(f"no {mod.TITLE} items to score ({notes or 'every row was left out'})", path)
    check_unique(records)
    return BenchmarkData(name, path, records, notes)


def results_benchmark(results: Sequence[StoredResult]) -> str | None:
    """The benchmark stored results were scored from (the first result's stored benchmark fields), if any."""
    for r in results:
        if isinstance(r.benchmark, dict) and r.benchmark.get("name") in MODULES:
            return r.benchmark["name"]
    return None


def evaluate(name: str, results: Sequence[StoredResult], seed: int = 0, notes: dict | None = None) -> dict:
    """The benchmark's metrics from stored results, with how they are computed and the paper's numbers."""
    mod = module(name)
    out, details = mod.metrics(list(results), seed)
    paper = {metric: dict(zip(PAPER_RUNS, values)) for metric, values in PAPER.get(name, {}).items()}
    return {"name": name, "title": mod.TITLE, "rule": mod.RULE, "metrics": out, "details": {**details, **(notes or {})},
            "paper": {"model": "DeepSeek-GRM-27B (SPCT paper, Tables 2/3/7)", "metrics": paper} if paper else None}
