"""Results files that survive anything: append-only, one fsynced line per finished record, resumable.

Reopening a results file resumes it: the records already in it are skipped (matched by id), a torn last
line (a run killed mid-write) is cut off with a warning, and a file written by a different run (other
model, template, k, seed, ...) is refused rather than mixed. Only `force` starts the file over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grm_cli.errors import InputError, IOFailure
from grm_cli.io.jsonl import loads_bounded


@dataclass
class ExistingResults:
    done: dict[str, dict] = field(default_factory=dict)  # id -> the stored line
    repaired_bytes: int = 0  # length of a torn last line that was cut off


def _scan(path: Path, run: dict | None) -> ExistingResults:
    """Read what a results file holds, cut a torn last line, and check it belongs to this run."""
    data = path.read_bytes()
    out = ExistingResults()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        tail = data[end:]
        try:
            loads_bounded(tail)
            complete = True
        except ValueError:
            complete = False
        if complete:  # a whole last line that only lacks its newline: keep it
            with path.open("ab") as f:
                f.write(b"\n")
            data += b"\n"
            end = len(data)
        else:
            with path.open("r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            out.repaired_bytes = len(data) - end
            data = data[:end]
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = loads_bounded(raw)
        except ValueError:
            raise InputError("holds a line that is not JSON: not a results file of grm; refusing to append (use another --output, or --force to replace it)", str(path), lineno) from None
        if not isinstance(obj, dict) or "id" not in obj:
            raise InputError('holds a line without "id": not a results file of grm; refusing to append (use another --output, or --force)', str(path), lineno)
        if run is not None:
            theirs = obj.get("run") or {}
            diff = [k for k in run if k in theirs and theirs[k] != run[k]] + [k for k in run if k not in theirs] + [k for k in theirs if k not in run]
            if diff:
                k = diff[0]
                there = repr(theirs[k]) if k in theirs else "not set"
                now = repr(run[k]) if k in run else "not set"
                raise InputError(
                    f"was written by a different run ({k}: {there} there, {now} now): "
                    "use another --output, or --force to replace it",
                    str(path), lineno,
                )
        out.done[str(obj["id"])] = obj
    return out


def refuse_input_as_output(output: str | Path | None, inputs) -> None:
    """--output may never be an input file (by any name: a symlink, ./, a hard link), whatever the flags:
    with --force it would replace the user's data with results."""
    if output is None:
        return
    out = Path(output)
    for inp in inputs:
        if inp in (None, "-") or str(inp).startswith("hf://"):
            continue
        src = Path(inp)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            try:
                same = os.path.samefile(out, src)
            except OSError:
                same = False
        if same:
            raise InputError(f"--output is the input file {inp}: results never replace the data they were scored from; choose another --output", str(output))


class ResultsFile:
    """Append-only JSONL of finished results; `done` tells which record ids a previous run finished."""

    def __init__(self, path: str | Path, run: dict | None = None, *, force: bool = False):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError("is a directory, expected an output file path", str(self.path))
        self.existing = ExistingResults()
        try:
            if self.path.exists() and not force:
                self.existing = _scan(self.path, run)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: IO[str] = self.path.open("w" if force else "a", encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", str(self.path)) from None

    @property
    def done(self) -> dict[str, dict]:
        return self.existing.done

    def write(self, obj: dict) -> None:
        # One write of one whole line, then flush and fsync: a kill leaves at most this line torn.
        try:
            self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as e:  # a full disk, a file-size limit: the lines before this one are whole and resume
            raise IOFailure(e, str(self.path), "write (the records before this one are saved: rerun the same command to resume once it can be written)") from None
        self.existing.done[str(obj["id"])] = obj

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:  # the failed write already said why; a torn last line is cut on resume
            pass

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
