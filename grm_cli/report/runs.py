"""The runs a report shows: results files read through the one results reader, each with `grm eval`'s summary.

A report never computes a metric of its own: the summary is `evaluation.metrics.evaluate` (and a benchmark's
own metrics), called as `grm eval --json` calls them, so the page and the JSON agree to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from grm_cli.errors import InputError
from grm_cli.evaluation.metrics import EvalSummary, evaluate, is_results_line
from grm_cli.io.jsonl import json_lines, loads_bounded, read_text_input
from grm_cli.scoring.results import StoredResult, result_from_json


@dataclass(frozen=True)
class ReportRun:
    """One run on the page: its results lines as written (what the record pages show), the same lines read
    back for the metrics, and the eval summary of them. A summary read from `grm eval --json` has no lines."""

    name: str
    source: str
    lines: tuple[dict, ...]
    results: tuple[StoredResult, ...]
    summary: EvalSummary | None
    line_numbers: tuple[int, ...] = ()  # where each line is in its file (a page says "line N"); empty: 1, 2, ...


def results_run(text: str, name: str, source: str) -> ReportRun:
    """The lines of a results file's text and the same lines read back, without a summary yet; a line that is
    not a results line is an error at FILE:LINE. Each line is decoded once by the one JSONL reader and read
    back by `result_from_json`, the one results reader."""
    lines: list[dict] = []
    results: list[StoredResult] = []
    numbers: list[int] = []
    for lineno, obj in json_lines(text, source):
        if not is_results_line(obj):
            raise InputError('not a results line of `grm score --output` or `grm eval --output` (no "samples" and "run"): grm view reads results files', source, lineno)
        results.append(result_from_json(obj, source, lineno))
        lines.append(obj)
        numbers.append(lineno)
    if not lines:
        raise InputError("no results: the file is empty", source)
    return ReportRun(name, source, tuple(lines), tuple(results), None, tuple(numbers))


def summarize(results: Sequence[StoredResult], *, name: str, seed: int = 0, draws: int = 200) -> EvalSummary:
    """What `grm eval RESULTS --json` reports for these results (a benchmark's own metrics included when the
    results were scored from one); unlabelled results get a summary whose accuracies are empty, not an error."""
    from grm_cli.evaluation import benchmarks

    summary = evaluate(results, seed=seed, draws=draws, name=name, allow_unlabelled=True)
    bench = benchmarks.results_benchmark(results)
    if bench is not None:
        summary.benchmark = benchmarks.evaluate(bench, results, seed)
    return summary


def _summary_of(text: str, name: str) -> EvalSummary | None:
    """A `grm eval --json` summary (one JSON document), or None when the text is something else."""
    if not text[:4096].lstrip().startswith("{"):  # not the whole text: a results file is large
        return None
    try:
        obj = loads_bounded(text)
    except ValueError:  # several lines (a results file), or not JSON: read as results, which says where
        return None
    return EvalSummary.from_json(obj, name) if isinstance(obj, dict) and "grm_eval" in obj else None


def read_run(path: str, *, seed: int = 0, draws: int = 200) -> ReportRun:
    """A results file (or a `grm eval --json` summary) as a run of the report, named as `grm eval` names it."""
    source, text = read_text_input(path)
    name = Path(path.rstrip("/")).stem
    summary = _summary_of(text, source)
    if summary is not None:
        return ReportRun(summary.name or name, source, (), (), summary)
    run = results_run(text, name, source)
    return replace(run, summary=summarize(run.results, name=name, seed=seed, draws=draws))


def eval_run(summary: EvalSummary, evidence: str | Sequence[dict] | None = None) -> ReportRun:
    """A run `grm eval` has just summarized: its summary as computed there, with the results lines it came
    from (a results file's path, or the lines of a run just scored); None for a summary without records."""
    name = summary.name or summary.model
    if evidence is None:
        return ReportRun(name, name, (), (), summary)
    if evidence == "<stdin>":
        raise InputError("--report: results read from stdin cannot be read again for the report; give their file instead of -")
    if isinstance(evidence, str):
        source, text = read_text_input(evidence)
        return replace(results_run(text, name, source), summary=summary)
    lines = tuple(evidence)
    return ReportRun(name, name, lines, tuple(result_from_json(obj, name, i) for i, obj in enumerate(lines, start=1)), summary)
