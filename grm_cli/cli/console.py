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

from grm_cli.errors import InputError

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


def _report_speed(engine, before, wall: float, records: int, output: Optional[Path]) -> None:
    """The run's speed on stderr, and as one line of OUTPUT.runs.jsonl next to --output."""
    if before is None or not records:
        return
    now = engine.stats
    delta = {k: (getattr(now, k) - getattr(before, k)) if getattr(now, k) is not None else None
             for k in ("requests", "prompt_tokens", "prompt_evaluated", "prompt_seconds", "generated_tokens", "decode_seconds")}
    if not delta["requests"]:
        return
    from grm_cli.engine.base import EngineStats

    stats = EngineStats(**delta, wall_seconds=wall).to_json()
    parts = [f"speed: {records} records, {stats['requests']} samples generated in {wall:.1f} s"]
    if stats["prompt_tokens_per_second"]:
        shared = 1 - stats["prompt_evaluated"] / stats["prompt_tokens"] if stats["prompt_tokens"] else 0
        parts.append(f"prompts {stats['prompt_evaluated']:,} tokens evaluated at {stats['prompt_tokens_per_second']:,.0f} tok/s ({shared:.0%} of {stats['prompt_tokens']:,} shared)")
    else:
        parts.append(f"prompts {stats['prompt_tokens']:,} tokens")
    if stats["generated_tokens_per_second"]:
        parts.append(f"generated {stats['generated_tokens']:,} tokens at {stats['generated_tokens_per_second']:,.0f} tok/s")
    say("; ".join(parts), "dim")
    if output is not None:
        import datetime

        line = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "records": records, "model": engine.name, **stats}
        try:
            with Path(f"{output}.runs.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as e:
            say(f"could not write the speed line to {output}.runs.jsonl: {e.strerror}", "yellow")


def _report_problems(problems: list | None, path: Optional[Path]) -> None:
    """--skip-invalid: each bad record becomes a line (FILE:LINE and why) in the errors file and on stderr."""
    if not problems:
        return
    for e in problems:
        say(f"skipped {e}", "yellow")
    if path is not None:
        try:
            with path.open("a", encoding="utf-8") as f:
                for e in problems:
                    f.write(json.dumps({"source": e.source, "line": e.line, "error": e.message}, ensure_ascii=False) + "\n")
        except OSError as e:
            raise InputError(f"cannot write the errors file: {e.strerror}", str(path)) from None
    say(f"{len(problems)} invalid record{'s' if len(problems) != 1 else ''} skipped" + (f"; listed in {path}" if path else ""), "yellow")
    problems.clear()


def _report_truncated(records) -> None:
    for rec in records:
        if rec.truncated:
            say(f"warning {rec.where}: responses {', '.join(map(str, rec.truncated))} were cut in the middle to fit the context (marked in the output)", "yellow")


class OutputClosed(Exception):
    """The reader of stdout went away (e.g. `grm ... | head -1`)."""
