"""Reading JSONL and text input: the one reader every input file goes through.

A bad line is an `InputError` located at FILE:LINE; with an `errors` list it is collected instead and
reading goes on (`--skip-invalid`). JSON nested deeper than `MAX_JSON_DEPTH` is refused the same way:
no input can crash the reader (Python's decoder would raise RecursionError on deep nesting).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from grm_cli.core.records import Record, Turn, content_key, json_type, record_from_dict
from grm_cli.errors import InputError

MAX_JSON_DEPTH = 64  # deeper than any record, result or request grm reads; far below the interpreter's limit
MAX_LINE_BYTES = 4 << 20  # a JSONL record longer than 4 MiB (about a million tokens) fits no context: refused as read
MAX_INPUT_BYTES = 2 << 30  # no input grm reads is larger; an endless stream (/dev/zero) stops here, not at MemoryError
_CHUNK = 1 << 20


class JSONTooDeep(ValueError):
    """A JSON text nested deeper than MAX_JSON_DEPTH."""


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            if d > limit:
                return False
            stack.extend((x, d + 1) for x in v if isinstance(x, (list, dict)))
    return True


def loads_bounded(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """json.loads that refuses nesting deeper than `limit` with JSONTooDeep (never RecursionError)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {limit} levels") from None
    if not _depth_ok(value, limit):
        raise JSONTooDeep(f"JSON nested deeper than {limit} levels")
    return value


def _read_bounded(stream, name: str, max_line: int | None) -> bytes:
    """All bytes of `stream`, read in chunks: a line longer than `max_line` (JSONL records) or an input
    larger than MAX_INPUT_BYTES is refused as soon as it is seen, before it fills the memory."""
    parts: list[bytes] = []
    total = line_start = lines = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        if max_line is not None:
            last = chunk.rfind(b"\n")
            if last >= 0:
                lines += chunk.count(b"\n")
                line_start = total + last + 1
            if total + len(chunk) - line_start > max_line:
                raise InputError(f"line {lines + 1} is longer than {max_line >> 20} MiB: a JSONL record that long fits no model's context "
                                 "(expected one record per line)", name, lines + 1)
        total += len(chunk)
        if total > MAX_INPUT_BYTES:
            raise InputError(f"more than {MAX_INPUT_BYTES >> 30} GiB: grm reads no input that large (an endless stream?); split the file", name)
        parts.append(chunk)
    return b"".join(parts)


def read_text_input(path: str, *, lenient: bool = False, max_line: int | None = None) -> tuple[str, str]:
    """Return (display name, full text) of a file or stdin ("-").

    lenient: invalid UTF-8 bytes are kept as surrogate escapes so that only the lines holding them fail
    (`--skip-invalid`); otherwise the first one is an error at its line.
    max_line: the longest line accepted (JSONL records), checked while reading.
    """
    if path == "-":
        name = "<stdin>"
        data = _read_bounded(sys.stdin.buffer, name, max_line)
    else:
        p = Path(path)
        if p.is_dir():
            raise InputError("is a directory, expected a file", path)
        try:
            with p.open("rb") as f:
                data = _read_bounded(f, path, max_line)
        except FileNotFoundError:
            raise InputError("no such file", path) from None
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror}", path) from None
        name = path
    if data.startswith(b"\xef\xbb\xbf"):  # a leading BOM (Windows editors) is dropped
        data = data[3:]
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as e:
        if lenient:
            return name, data.decode("utf-8", "surrogateescape")
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"invalid UTF-8 at byte {e.start}: expected UTF-8 text", name, line) from None


_BAD_BYTES = re.compile("[\udc80-\udcff]")


def json_lines(text: str, source: str, *, objects_only: bool = True, errors: list | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank JSONL line. A bad line raises, located; when an
    `errors` list is given it is appended there instead and reading goes on (`--skip-invalid`)."""
    for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit inside a JSON string
        if not line.strip():
            continue
        try:
            if _BAD_BYTES.search(line):
                raise InputError("invalid UTF-8 bytes on this line: expected UTF-8 text", source, lineno)
            try:
                obj = loads_bounded(line)
            except json.JSONDecodeError as e:
                msg = e.msg[:-3] if e.msg.endswith(" at") else e.msg
                raise InputError(f"invalid JSON ({msg} at column {e.colno}): expected one JSON object per line", source, lineno) from None
            except JSONTooDeep as e:
                raise InputError(f"{e}: expected one JSON record per line", source, lineno) from None
            if objects_only and not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {json_type(obj)}", source, lineno)
        except InputError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        yield lineno, obj


def parse_jsonl(text: str, source: str, *, need_responses: bool = True, errors: list | None = None) -> list[Record]:
    """All records of a JSONL text; the first problem raises with its line number, or, with an `errors`
    list, is collected there while the good records are kept."""
    records: list[Record] = []
    seen: dict[str, int] = {}
    for lineno, obj in json_lines(text, source, objects_only=False, errors=errors):
        try:
            rec = record_from_dict(obj, source, lineno, need_responses=need_responses)
            if rec.id in seen:
                if "id" in obj:
                    raise InputError(f'field "id": duplicate id {rec.id!r} (first on line {seen[rec.id]})', source, lineno)
                # The same content twice without ids: each copy is its own record (and resumes as such).
                copy = 2
                while f"{rec.id}#{copy}" in seen:
                    copy += 1
                rec = replace(rec, id=f"{rec.id}#{copy}")
        except InputError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        seen[rec.id] = lineno
        records.append(rec)
    if not records and not errors:
        raise InputError("no records: the file is empty", source)
    return records


def looks_like_jsonl(text: str) -> bool:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return first.lstrip().startswith("{")


def read_records(path: str, *, need_responses: bool = True, errors: list | None = None) -> list[Record]:
    """Read a JSONL file (or "-" for stdin) of records; with an `errors` list, bad lines are collected."""
    name, text = read_text_input(path, lenient=errors is not None, max_line=MAX_LINE_BYTES)
    return parse_jsonl(text, name, need_responses=need_responses, errors=errors)


def read_prompts(path: str) -> list[Record]:
    """For `grm principles`: a JSONL of records, or a plain-text file holding one prompt."""
    name, text = read_text_input(path, max_line=MAX_LINE_BYTES)
    if looks_like_jsonl(text):
        return parse_jsonl(text, name, need_responses=False)
    if not text.strip():
        raise InputError("empty prompt: expected the query text", name)
    context = (Turn("user", text.strip("\n")),)
    return [Record(id=content_key(context, ()), context=context, responses=(), source=name, line=1)]
