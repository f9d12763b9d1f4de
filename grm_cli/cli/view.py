"""`grm view`: one self-contained HTML report of runs (summary, records, every sample), to read in a browser."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from grm_cli.cli.app import app
from grm_cli.cli.console import say
from grm_cli.errors import InputError


@app.command()
def view(
    files: List[str] = typer.Argument(..., metavar="RESULTS...", help="Results files of `grm score --output` or `grm eval --output` (several: shown side by side, records matched by id), or `grm eval --json` summaries."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The report to write. Default: next to the first results file, named after it (runs/a.jsonl -> runs/a.html; several files: a-vs-b.html)."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Replace the report if it exists (it is never overwritten otherwise)."),
    open_it: bool = typer.Option(False, "--open", help="Open the report in your web browser once written."),
    title: Optional[str] = typer.Option(None, "--title", help="The page's title. Default: the runs' names."),
    seed: int = typer.Option(0, "--seed", help="Seed of the tie-break and of the curve's random k-subsets, as `grm eval --seed` (the summary equals `grm eval RESULTS --json` with the same seed)."),
    draws: int = typer.Option(200, "--draws", help="Random k-subsets per point of the voting@k curve, as `grm eval --draws`."),
    as_json: bool = typer.Option(False, "--json", help="Print where the report went and what it holds, as JSON."),
) -> None:
    """Write one self-contained HTML report of runs: the summary (accuracy strict and with ties broken,
    ties, unparsed, per subset, the voting@k curve, position bias), every record with filters, and each
    sample's principles, critique and scores. The page loads nothing from the network and runs no code
    from the data.

    Examples:

      grm view runs/smollm2.jsonl

      grm view runs/smollm2.jsonl --open

      grm view runs/k8.jsonl runs/k8-none.jsonl -o compare.html

      grm eval examples/llmbar.jsonl -k 4 -o runs/smollm2.jsonl --report runs/smollm2.html
    """
    from grm_cli.report import check_report_path, default_report_path, read_run, write_report

    if draws < 1:
        raise InputError(f"--draws {draws}: expected a positive number")
    path = check_report_path(output if output is not None else default_report_path(files), files, force=force)
    runs = [read_run(f, seed=seed, draws=draws) for f in files]
    written = write_report(runs, path, title=title, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(written.to_json(), indent=2) + "\n")
    else:
        held = "; ".join(f"{r['name']}: {r['records']:,} records, {r['samples']:,} samples" for r in written.runs)
        say(f"report written to {written.path} ({written.bytes / 1e6:.1f} MB; {held})", "green")
    if open_it:
        open_in_browser(written.path)


def open_in_browser(path: Path) -> None:
    """Python's webbrowser, on the file's URL; a machine without a browser gets a line, not a failure."""
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        say(f"could not open a browser here: open {path} yourself", "yellow")
