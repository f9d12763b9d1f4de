"""The two files a run writes beside its results: OUTPUT.runs.jsonl (one speed line per run) and the errors
file of --skip-invalid (one line per bad record: FILE, LINE and why). Their formats live here only."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Sequence

from grm_cli.errors import InputError


def speed_log_path(output: str | Path) -> Path:
    return Path(f"{output}.runs.jsonl")


def errors_path(output: str | Path) -> Path:
    return Path(f"{output}.errors.jsonl")


def is_speed_line(obj: object) -> bool:
    """Whether a decoded line is one of OUTPUT.runs.jsonl's (so a reader can say what the file is)."""
    return isinstance(obj, dict) and "wall_seconds" in obj and "requests" in obj


def append_speed_line(output: str | Path, records: int, model: str, stats: dict) -> str | None:
    """Append one finished run's speed to OUTPUT.runs.jsonl; the reason when it could not be written."""
    line = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "records": records, "model": model, **stats}
    try:
        with speed_log_path(output).open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    except OSError as e:
        return f"could not write the speed line to {speed_log_path(output)}: {e.strerror}"
    return None


def append_errors(path: str | Path, problems: Sequence[InputError]) -> None:
    """The bad records of --skip-invalid, one JSON line each: {source, line, error}."""
    try:
        with Path(path).open("a", encoding="utf-8") as f:
            for e in problems:
                f.write(json.dumps({"source": e.source, "line": e.line, "error": e.message}, ensure_ascii=False) + "\n")
    except OSError as e:
        raise InputError(f"cannot write the errors file: {e.strerror}", str(path)) from None


def read_errors(path: str | Path) -> list[dict]:
    """The errors file back (what a script or a later run reads)."""
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
