"""JSONL results written so that a finished result is never lost or overwritten."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from .errors import InputError


class JsonlWriter:
    """One line per finished record, flushed and fsynced as it is written.

    Refuses to replace a file that already holds results unless `overwrite` is set.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError("is a directory, expected an output file path", str(self.path))
        if self.path.exists() and self.path.stat().st_size > 0 and not overwrite:
            raise InputError("already exists and holds results: choose another --output, or pass --overwrite to replace it", str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", str(self.path)) from None

    def write(self, obj: dict) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
