"""`grm view`'s report as a library: results files in, one self-contained HTML page out.

    from grm_cli.report import read_run, write_report
    write_report([read_run("runs/a.jsonl"), read_run("runs/b.jsonl")], "a-vs-b.html")

The page needs nothing but itself (no network, nothing from a CDN); `grm eval --report` writes the same page
from the summaries it has just computed (`eval_run`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

from grm_cli.errors import InputError, IOFailure
from grm_cli.report.model import report_data
from grm_cli.report.page import render_page
from grm_cli.report.runs import ReportRun, eval_run, read_run

__all__ = ["ReportRun", "ReportWritten", "check_report_path", "default_report_path", "eval_run", "read_run", "write_report"]


@dataclass(frozen=True)
class ReportWritten:
    """What was written: where, how big, and what each run holds (grm view --json prints it)."""

    path: Path
    bytes: int
    runs: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"report": str(self.path), "bytes": self.bytes, "runs": self.runs}


def default_report_path(inputs: Sequence[str]) -> Path:
    """Next to the first results file, named after it (runs/a.jsonl -> runs/a.html; several: a-vs-b.html)."""
    if not inputs or "-" in inputs:
        raise InputError("reading results from stdin: name the report with -o/--output")
    stems = [Path(p.rstrip("/")).stem for p in inputs]
    name = stems[0] if len(stems) == 1 else "-vs-".join(stems[:3]) + (f"-and-{len(stems) - 3}-more" if len(stems) > 3 else "")
    return Path(inputs[0]).parent / f"{name}.html"


def check_report_path(path: str | Path, inputs: Sequence[str | Path | None] = (), *, force: bool = False, flag: str = "--output") -> Path:
    """A report never replaces a file by accident (an existing one needs --force) and never an input, whatever
    the flags: checked before any work, so a long `grm eval` does not fail at its end."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected a file name for the report, such as report.html", str(path))
    for inp in inputs:
        if inp in (None, "-") or str(inp).startswith("hf://"):
            continue
        same = path.resolve() == Path(inp).resolve() or (path.exists() and Path(inp).exists() and os.path.samefile(path, inp))
        if same:
            raise InputError(f"{flag} is the results file {inp}: a report never replaces the results it shows; choose another {flag}", str(path))
    if path.exists() and not force:
        raise InputError(f"exists: a report is never overwritten by accident (use another {flag}, or --force to replace it)", str(path))
    return path


def write_report(runs: Sequence[ReportRun], path: str | Path, *, title: str | None = None, seed: int = 0) -> ReportWritten:
    """Write the page for these runs to `path` (whole or not at all: a temporary file renamed into place)."""
    if not runs:
        raise InputError("no runs to report")
    path = Path(path)
    title = title or "grm report: " + ", ".join(r.name for r in runs)
    data = report_data(runs, title=title, seed=seed, generated=datetime.now().astimezone().isoformat(timespec="seconds"))
    page = render_page(data, title).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as f:  # not mkstemp: the report gets the usual permissions, not 0600
                f.write(page)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise IOFailure(e, str(path), "write the report") from None
    counts = [{"name": r["name"], "source": r["source"], "records": len(r["records"]), "samples": sum(len(x["samples"]) for x in r["records"])} for r in data["runs"]]
    return ReportWritten(path, len(page), counts)
