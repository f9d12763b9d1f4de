"""Reading the input formats users already have into one `Record` type.

Accepted, one JSON object per line:
  {"prompt", "responses": [...]}                 (RewardBench / generic)
  {"prompt", "chosen", "rejected"}               (TRL pairs; chosen becomes response 1, preferred=0)
  {"messages": [{"role", "content"}, ...], ...}  (a conversation; the last user turn is the query)
  {"prompt", "completion", "label": true/false}   (TRL unpaired; one response judged correct or not)
plus optional "id", "preferred" (0-based index of the labelled best), "subset", "principles".
`chosen`/`rejected` may also be message lists (TRL's conversational format): the assistant turns are used.
A plain-text file (not JSONL) is one prompt with no responses (for `grm principles`).
Every problem is an `InputError` that names the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from grm_cli.errors import InputError

MAX_RESPONSES = 16


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True)
class Record:
    """One query with 0..n candidate responses, as read from a user's file."""

    id: str
    context: tuple[Turn, ...]  # the conversation so far; the last turn is the user's query
    responses: tuple[str, ...]
    preferred: int | None = None
    label: int | None = None  # a single response's ground truth for the 0/1 template: 1 correct, 0 not
    subset: str | None = None
    principles: str | None = None
    source: str = "<input>"
    line: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    truncated: tuple[int, ...] = ()  # responses whose middle grm cut to fit the context (--on-long truncate)

    @property
    def query(self) -> str:
        return self.context[-1].content

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def content_key(context: tuple[Turn, ...], responses: tuple[str, ...]) -> str:
    """A stable id for records without one: the hash of what is judged."""
    h = hashlib.sha256()
    for t in context:
        h.update(f"{t.role}\x00{t.content}\x01".encode())
    for r in responses:
        h.update(b"\x02" + r.encode())
    return "sha256:" + h.hexdigest()[:16]


def label_key(rec: "Record") -> str:
    """Which labelled item a record is (its id, conversation and label): principles filtered on a record
    carry this key, so scoring that same record with them is recognised as the oracle setting."""
    h = hashlib.sha256(f"{rec.id}\x00{rec.preferred}\x00{rec.label}".encode())
    for t in rec.context:
        h.update(f"{t.role}\x00{t.content}\x01".encode())
    return "sha256:" + h.hexdigest()[:16]


def json_type(value: Any) -> str:
    """JSON's name for a decoded value's type, for messages users read."""
    for typ, name in ((bool, "boolean"), (str, "string"), ((int, float), "number"), (list, "array"), (dict, "object")):
        if isinstance(value, typ):
            return name
    return "null" if value is None else type(value).__name__


def _fail(msg: str, source: str, line: int) -> InputError:
    return InputError(msg, source, line)


def _parse_messages(value: Any, fld: str, source: str, line: int) -> tuple[Turn, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(f'field "{fld}": expected a non-empty list of {{"role", "content"}} objects', source, line)
    turns = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise _fail(f'field "{fld}[{i}]": expected an object with string "role" and "content"', source, line)
        turns.append(Turn(m["role"], m["content"]))
    return tuple(turns)


def _context_of(turns: tuple[Turn, ...], fld: str, source: str, line: int) -> tuple[Turn, ...]:
    """Cut a conversation after its last user turn: that turn is the query."""
    last_user = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    if last_user is None:
        raise _fail(f'field "{fld}": the conversation has no "user" turn to judge responses to', source, line)
    ctx = turns[: last_user + 1]
    if not ctx[-1].content.strip():
        raise _fail(f'field "{fld}": the last user turn is empty', source, line)
    return ctx


def _response_text(value: Any, fld: str, source: str, line: int) -> str:
    """A response is a string, or a TRL conversational completion (list of messages)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        turns = _parse_messages(value, fld, source, line)
        assistant = [t.content for t in turns if t.role == "assistant"]
        if not assistant:
            raise _fail(f'field "{fld}": a message list must contain an "assistant" turn', source, line)
        text = assistant[-1]
    else:
        raise _fail(f'field "{fld}": expected a string, got {json_type(value)}', source, line)
    if not text.strip():
        raise _fail(f'field "{fld}": response is empty', source, line)
    return text


def record_from_dict(obj: Any, source: str = "<input>", line: int = 1, *, need_responses: bool = True) -> Record:
    """Validate one decoded JSON object into a Record, or raise InputError saying what is wrong."""
    if not isinstance(obj, dict):
        raise _fail(f"expected a JSON object, got {json_type(obj)}", source, line)

    # The query and its conversation.
    if "messages" in obj and "prompt" not in obj:
        context = _context_of(_parse_messages(obj["messages"], "messages", source, line), "messages", source, line)
    elif "prompt" in obj:
        p = obj["prompt"]
        if isinstance(p, str):
            if not p.strip():
                raise _fail('field "prompt": is empty', source, line)
            context = (Turn("user", p),)
        elif isinstance(p, list):
            context = _context_of(_parse_messages(p, "prompt", source, line), "prompt", source, line)
        else:
            raise _fail(f'field "prompt": expected a string or a list of messages, got {json_type(p)}', source, line)
    else:
        raise _fail('missing field "prompt" (or "messages"): every record needs the query being answered', source, line)

    # The responses.
    preferred = obj.get("preferred")
    if "responses" in obj:
        if "chosen" in obj or "rejected" in obj:
            raise _fail('give either "responses" or "chosen"/"rejected", not both', source, line)
        rs = obj["responses"]
        if not isinstance(rs, list):
            raise _fail(f'field "responses": expected a list of strings, got {json_type(rs)}', source, line)
        responses = tuple(_response_text(r, f"responses[{i}]", source, line) for i, r in enumerate(rs))
    elif "completion" in obj:  # TRL's unpaired form (prompt, completion, label)
        if "chosen" in obj or "rejected" in obj:
            raise _fail('give either "completion" or "chosen"/"rejected", not both', source, line)
        responses = (_response_text(obj["completion"], "completion", source, line),)
    elif "chosen" in obj or "rejected" in obj:
        for f in ("chosen", "rejected"):
            if f not in obj:
                raise _fail(f'field "{f}" is missing: a TRL pair needs both "chosen" and "rejected"', source, line)
        if preferred is not None:
            raise _fail('field "preferred": not allowed with "chosen"/"rejected" (chosen is the preferred one)', source, line)
        responses = (_response_text(obj["chosen"], "chosen", source, line), _response_text(obj["rejected"], "rejected", source, line))
        preferred = 0
    else:
        responses = ()
    if need_responses and not responses:
        raise _fail('no responses to judge: expected "responses": [..] or "chosen"/"rejected"', source, line)
    if len(responses) > MAX_RESPONSES:
        raise _fail(f'field "responses": {len(responses)} responses, at most {MAX_RESPONSES} are supported', source, line)

    label = obj.get("label")
    if label is not None:
        if len(responses) != 1:
            raise _fail(f'field "label": labels a single response (true/1 = correct, false/0 = incorrect); with {len(responses)} responses give "preferred"', source, line)
        if label not in (0, 1):  # True/False compare equal to 1/0
            raise _fail(f'field "label": expected true/false or 1/0, got {json.dumps(label)}', source, line)
        label = int(label)
    if preferred is not None and len(responses) == 1:
        raise _fail('field "preferred": a single response has no best to pick; give "label" (true/1 = correct, false/0 = incorrect)', source, line)
    if preferred is not None:
        if isinstance(preferred, bool) or not isinstance(preferred, int):
            raise _fail(f'field "preferred": expected an integer index, got {json.dumps(preferred)}', source, line)
        if not 0 <= preferred < len(responses):
            raise _fail(f'field "preferred": {preferred} is out of range for {len(responses)} responses (0-based index)', source, line)

    rid = obj.get("id")
    if rid is not None and not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise _fail(f'field "id": expected a string or integer, got {json.dumps(rid)}', source, line)
    subset = obj.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise _fail(f'field "subset": expected a string, got {json_type(subset)}', source, line)
    principles = obj.get("principles")
    if principles is not None:
        if isinstance(principles, list) and all(isinstance(p, str) for p in principles):
            principles = "\n".join(principles)
        if not isinstance(principles, str) or not principles.strip():
            raise _fail('field "principles": expected a non-empty string or list of strings', source, line)

    return Record(
        id=str(rid) if rid is not None else content_key(context, responses),
        context=context,
        responses=responses,
        preferred=preferred,
        label=label,
        subset=subset,
        principles=principles,
        source=source,
        line=line,
        raw=obj,
    )


def read_text_input(path: str, *, lenient: bool = False) -> tuple[str, str]:
    """Return (display name, full text) of a file or stdin ("-").

    lenient: invalid UTF-8 bytes are kept as surrogate escapes so that only the lines holding them fail
    (`--skip-invalid`); otherwise the first one is an error at its line.
    """
    if path == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        p = Path(path)
        if p.is_dir():
            raise InputError("is a directory, expected a file", path)
        try:
            data = p.read_bytes()
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
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                msg = e.msg[:-3] if e.msg.endswith(" at") else e.msg
                raise InputError(f"invalid JSON ({msg} at column {e.colno}): expected one JSON object per line", source, lineno) from None
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
    name, text = read_text_input(path, lenient=errors is not None)
    return parse_jsonl(text, name, need_responses=need_responses, errors=errors)


def read_prompts(path: str) -> list[Record]:
    """For `grm principles`: a JSONL of records, or a plain-text file holding one prompt."""
    name, text = read_text_input(path)
    if looks_like_jsonl(text):
        return parse_jsonl(text, name, need_responses=False)
    if not text.strip():
        raise InputError("empty prompt: expected the query text", name)
    context = (Turn("user", text.strip("\n")),)
    return [Record(id=content_key(context, ()), context=context, responses=(), source=name, line=1)]


def principles_entry(obj: dict, name: str = "<principles>", lineno: int = 0) -> dict:
    """One saved principles line, checked: {id, prompt, principles, provenance} (+ agreed/runs when filtered)."""
    if "principles" not in obj:
        what = "results of grm score" if "samples" in obj else ("a meta RM" if "head" in obj else "records" if ("responses" in obj or "chosen" in obj) else "")
        looks = f"; it looks like {what}" if what else ""
        raise InputError(f'not a principles file (this line has no "principles" field{looks}): expected the output of `grm principles --output` or `--filter`, or a plain text file', name, lineno)
    p = obj.get("principles")
    if isinstance(p, list) and all(isinstance(x, str) for x in p):
        p = "\n".join(p)
    filtered = "agreed" in obj
    if not (filtered and p is None) and (not isinstance(p, str) or not p.strip()):
        raise InputError('field "principles": expected a non-empty string (the model wrote none for this query?)', name, lineno)
    prov = obj.get("provenance")
    if prov is not None and not isinstance(prov, dict):
        raise InputError(f'field "provenance": expected an object, got {json_type(prov)}', name, lineno)
    entry = {"id": obj.get("id"), "prompt": obj.get("prompt"), "principles": p, "provenance": prov}
    for key in ("agreed", "runs"):
        if filtered and (not isinstance(obj.get(key), int) or isinstance(obj.get(key), bool) or obj[key] < 0):
            raise InputError(f'field "{key}": expected a count (0 or more), got {json.dumps(obj.get(key))}', name, lineno)
    if filtered:
        entry.update(agreed=obj.get("agreed"), runs=obj.get("runs"))
        entry["provenance"] = {**(prov or {}), "agreed": obj.get("agreed"), "runs": obj.get("runs"), "filtered_on": obj.get("filtered_on")}
    return entry


def read_principles(path: str) -> list[dict]:
    """Saved principles: a JSONL written by `grm principles --output` or `--filter` (or edited by hand), each
    line with "principles" and optionally "id"/"prompt"; or a plain-text file whose principles apply to
    every record. A filter line (it has "agreed") may hold null principles: no run agreed with the label."""
    name, text = read_text_input(path)
    if not looks_like_jsonl(text):
        if not text.strip():
            raise InputError("empty principles file: expected principles text or JSONL", name)
        return [{"principles": text.strip()}]
    entries = [principles_entry(obj, name, lineno) for lineno, obj in json_lines(text, name)]
    if not entries:
        raise InputError("no principles: the file is empty", name)
    return entries
