"""A benchmark's files as published, read into located rows: JSONL, a JSON array (RM-Bench's and RMB's
layout), parquet (the Hugging Face datasets' layout), a folder of them, or `hf://datasets/owner/name[@rev]/path`.

Every row keeps where it came from (file and line, or file and row for parquet), so a malformed row is an
`InputError` at FILE:LINE like every other input. JSON goes through `io.jsonl.loads_bounded`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grm_cli.core.records import json_type
from grm_cli.errors import InputError
from grm_cli.io.jsonl import JSONTooDeep, json_lines, loads_bounded, read_text_input

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
_HF_DATASET = re.compile(r"^hf://datasets/(?P<owner>[^/@\s]+)/(?P<name>[^/@\s]+)(?:@(?P<rev>[^/\s]+))?(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class Row:
    """One published row and where it is: `line` is the JSONL/JSON line, or the parquet row (1-based)."""

    source: str
    line: int
    data: dict
    parquet: bool = False

    def error(self, message: str) -> InputError:
        if self.parquet:
            return InputError(f"row {self.line}: {message}", self.source)
        return InputError(message, self.source, self.line)

    def field(self, name: str, typ: type | tuple, what: str) -> Any:
        """A required field of the given JSON type, or a located error naming it and the layout."""
        if name not in self.data:
            raise self.error(f'missing field "{name}": expected {what}')
        value = self.data[name]
        if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
            raise self.error(f'field "{name}": expected {what}, got {json_type(value)}')
        return value

    def text(self, name: str, what: str) -> str:
        value = self.field(name, str, what)
        if not value.strip():
            raise self.error(f'field "{name}": is empty; expected {what}')
        return value

    def texts(self, name: str, what: str, *, minimum: int = 1) -> list[str]:
        value = self.field(name, list, what)
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v.strip():
                raise self.error(f'field "{name}[{i}]": expected a non-empty string ({what}), got {json_type(v) if not isinstance(v, str) else "an empty string"}')
        if len(value) < minimum:
            raise self.error(f'field "{name}": {len(value)} entries, expected {what}')
        return value


def parse_hf_dataset(spec: str) -> tuple[str, str | None, str]:
    """hf://datasets/owner/name[@rev]/path -> (repo id, revision, path inside the repository)."""
    m = _HF_DATASET.match(spec)
    if not m or not m.group("path"):
        raise InputError(f"{spec}: expected hf://datasets/OWNER/NAME/PATH (optionally hf://datasets/OWNER/NAME@REVISION/PATH)")
    return f"{m.group('owner')}/{m.group('name')}", m.group("rev"), m.group("path").strip("/")


def fetch_hf_dataset(spec: str) -> Path:
    """Download a dataset file (or a folder of one) through huggingface-hub into its cache; the local path."""
    from huggingface_hub import hf_hub_download, snapshot_download

    from grm_cli.models.hub import hub_errors

    repo, rev, path = parse_hf_dataset(spec)
    with hub_errors(spec):
        if path.endswith(DATA_SUFFIXES):
            return Path(hf_hub_download(repo, path, repo_type="dataset", revision=rev))
        root = snapshot_download(repo, repo_type="dataset", revision=rev, allow_patterns=[f"{path}/**"])
    folder = Path(root) / path
    if not folder.is_dir():
        raise InputError("no such file or folder in the dataset repository", spec)
    return folder


def data_files(path: str) -> list[str]:
    """The files a FILE argument stands for: itself, or every data file under a folder (sorted)."""
    if path == "-":
        return [path]
    p = Path(path)
    if p.is_dir():
        found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in DATA_SUFFIXES and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not found:
            raise InputError(f"a folder without benchmark files (expected {', '.join(DATA_SUFFIXES)} files in it)", path)
        return found
    if not p.exists():
        raise InputError("no such file", path)
    return [path]


def _json_array(text: str, source: str) -> list[tuple[int, Any]]:
    """(line, element) for each element of a top-level JSON array, each element's line being where it starts."""
    dec = json.JSONDecoder()
    items: list[tuple[int, Any]] = []
    ws = re.compile(r"[ \t\r\n]*")
    i = ws.match(text, 0).end() + 1  # past "["
    i = ws.match(text, i).end()
    if i < len(text) and text[i] == "]":
        return items
    line, seen = 1, 0  # lines counted up to `seen`: each element's line costs only the text since the last
    while True:
        line += text.count("\n", seen, i)
        seen = i
        try:
            value, end = dec.raw_decode(text, i)
            loads_bounded(text[i:end])  # the same depth bound as every JSON input
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at column {e.colno}): expected a JSON array of objects", source, e.lineno) from None
        except (RecursionError, JSONTooDeep):
            raise InputError("JSON nested deeper than 64 levels: expected a JSON array of objects", source, line) from None
        items.append((line, value))
        i = ws.match(text, end).end()
        if i < len(text) and text[i] == ",":
            i = ws.match(text, i + 1).end()
            continue
        if i < len(text) and text[i] == "]":
            if text[i + 1:].strip():
                raise InputError("text after the end of the JSON array", source, text.count("\n", 0, i) + 1)
            return items
        raise InputError("invalid JSON (expected ',' or ']' between array elements)", source, text.count("\n", 0, i) + 1)


def _parquet_rows(path: str) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading parquet needs pyarrow, which is not installed: pip install pyarrow (or give the benchmark's JSON/JSONL files)", path) from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid/OSError family for a bad file
        raise InputError(f"not a readable parquet file ({type(e).__name__}: {e})", path) from None
    return [Row(path, i, row, parquet=True) for i, row in enumerate(table.to_pylist(), start=1)]


def read_rows(path: str, errors: list | None = None) -> list[Row]:
    """Every row of one file: a parquet table, a JSON array, or JSONL (one object per line). With an
    `errors` list (--skip-invalid), a bad JSONL line or a row that is not an object is collected there;
    a broken JSON array cannot be read past its error and always raises."""
    if path.endswith(".parquet"):
        return _parquet_rows(path)
    name, text = read_text_input(path, lenient=errors is not None)
    stripped = text.lstrip()
    if stripped.startswith("["):
        pairs = _json_array(text, name)
    else:
        pairs = list(json_lines(text, name, objects_only=False, errors=errors))
    rows = []
    for line, obj in pairs:
        if not isinstance(obj, dict):
            e = InputError(f"expected a JSON object per row, got {json_type(obj)}", name, line)
            if errors is None:
                raise e
            errors.append(e)
            continue
        rows.append(Row(name, line, obj))
    return rows


def first_row(path: str) -> dict | None:
    """The first row of a file, for telling which benchmark it holds; None when it cannot be read."""
    try:
        if path.endswith(".parquet"):
            rows = _parquet_rows(path)
            return rows[0].data if rows else None
        _, text = read_text_input(path)
    except InputError:
        return None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            dec = json.JSONDecoder()
            inner = stripped[1:].lstrip()
            value, _ = dec.raw_decode(inner) if inner and inner[0] != "]" else (None, 0)
        else:
            head = next((ln for ln in text.split("\n") if ln.strip()), "")
            value = loads_bounded(head) if head else None
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
