"""What the CLI shows on stderr: log lines, progress bars, the speed line, skipped and truncated records."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

err = Console(stderr=True, soft_wrap=True)  # whole lines: scripts grep them
_lines_off = False


def say(text: str, style: str | None = None) -> None:
    """A line on stderr, shown literally: paths and user data are never read as rich markup."""
    if not _lines_off:
        err.print(Text(text, style=style), highlight=False)


def lines_off() -> None:
    """No more `say` lines from this process (errors still print): under `accelerate launch` the other
    ranks run the same command, and their log lines would repeat rank 0's."""
    global _lines_off
    _lines_off = True


def _progress(total: int, what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=total <= 1 and not err.is_terminal,
    )


def print_line(line: dict) -> None:
    """One JSONL line on stdout, flushed at once: a script reading the pipe sees each record as it ends."""
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def progress_bar(what: str):
    """A `track` for scoring.runner.run_resumable: a rich progress bar on stderr while the work runs."""

    @contextmanager
    def track(total: int):
        with _progress(total, what) as progress:
            task = progress.add_task(what, total=total)
            yield lambda: progress.advance(task)

    return track


def speed_text(records: int, stats: dict) -> str:
    """The speed line: records, samples, prompt tokens evaluated (and how much of them was shared), tokens generated."""
    parts = [f"speed: {records} records, {stats['requests']} samples generated in {stats['wall_seconds']:.1f} s"]
    if stats["prompt_tokens_per_second"]:
        shared = 1 - stats["prompt_evaluated"] / stats["prompt_tokens"] if stats["prompt_tokens"] else 0
        parts.append(f"prompts {stats['prompt_evaluated']:,} tokens evaluated at {stats['prompt_tokens_per_second']:,.0f} tok/s ({shared:.0%} of {stats['prompt_tokens']:,} shared)")
    else:
        parts.append(f"prompts {stats['prompt_tokens']:,} tokens")
    if stats["generated_tokens_per_second"]:
        parts.append(f"generated {stats['generated_tokens']:,} tokens at {stats['generated_tokens_per_second']:,.0f} tok/s")
    return "; ".join(parts)


def report_truncated(records) -> None:
    for rec in records:
        if rec.truncated:
            say(f"warning {rec.where}: responses {', '.join(map(str, rec.truncated))} were cut in the middle to fit the context (marked in the output)", "yellow")


class ConsoleReporter:
    """A scoring job's `Reporter` on the terminal: progress bars and log lines on stderr; each finished
    record as a JSONL line on stdout (`print_json`) and/or a rich table (`print_tables`)."""

    def __init__(self, *, print_json: bool = False, print_tables: bool = False, quiet: bool = False):
        self.print_json, self.print_tables, self.quiet = print_json, print_tables, quiet
        self._out = Console() if print_tables else None

    def progress(self, what: str):
        return progress_bar(what)

    def note(self, message: str, level: Optional[str] = None) -> None:
        if not self.quiet or level == "yellow":
            say(message, level)

    def line(self, line: dict, result) -> None:
        if self.print_json:
            print_line(line)
        if self._out is not None:
            from grm_cli.cli.render import score_table

            self._out.print(score_table(result))

    def problems(self, problems, path: Optional[Path]) -> None:
        """--skip-invalid: each bad record on stderr (FILE:LINE and why); the job wrote the errors file."""
        for e in problems:
            say(f"skipped {e}", "yellow")
        say(f"{len(problems)} invalid record{'s' if len(problems) != 1 else ''} skipped" + (f"; listed in {path}" if path else ""), "yellow")

    def truncated(self, records) -> None:
        report_truncated(records)

    def speed(self, records: int, stats: dict) -> None:
        say(speed_text(records, stats), "dim")


class OutputClosed(Exception):
    """The reader of stdout went away (e.g. `grm ... | head -1`)."""
