"""Reading the input formats users already have into one `Record` type.

Accepted, one JSON object per line:
  {"prompt", "responses": [...]}                 (RewardBench / generic)
  {"prompt", "chosen", "rejected"}               (TRL pairs; chosen becomes response 1, preferred=0)
  {"messages": [{"role", "content"}, ...], ...}  (a conversation; the last user turn is the query)
  {"prompt", "completion", "label": true/false}   (TRL unpaired; one response judged correct or not)
plus optional "id", "preferred" (0-based index of the labelled best), "subset", "principles", and what some
judges' protocols take: "rubric" (a text, or score descriptions: {"criteria", "score1_description", ...} as
Prometheus writes them, or {"criteria", "scores": {"1": ..., ...}}) and "reference" (a reference answer).
`chosen`/`rejected` may also be message lists (TRL's conversational format): the assistant turns are used.
Reading files is `io.jsonl`'s job; this module turns one decoded object into a `Record`.
Every problem is an `InputError` that names the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from grm_cli.errors import InputError

MAX_RESPONSES = 16


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True)
class Rubric:
    """What a judge grades against: the criteria, and a description per score where the user gives them
    (Prometheus' and Flow-Judge's score rubrics). A plain-text rubric has only `criteria`."""

    criteria: str
    scores: tuple[tuple[int, str], ...] = ()  # (score, description), ascending

    @property
    def is_text(self) -> bool:
        return not self.scores


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
    rubric: Rubric | None = None  # the grading rubric, for protocols that take one (--rubric FILE sets it for all)
    reference: str | None = None  # a reference answer, for protocols that take one

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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_unicode(value: Any, path: str = "") -> str | None:
    """The field path of the first string holding a lone surrogate (JSON allows "\\ud800" escapes that are
    not Unicode text: they could be neither tokenized nor written back as UTF-8)."""
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return p or "(the value)"
        elif isinstance(v, dict):
            stack.extend((x, f"{p}.{k}" if p else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))
    return None


def record_from_dict(obj: Any, source: str = "<input>", line: int = 1, *, need_responses: bool = True) -> Record:
    """Validate one decoded JSON object into a Record, or raise InputError saying what is wrong."""
    if not isinstance(obj, dict):
        raise _fail(f"expected a JSON object, got {json_type(obj)}", source, line)
    bad = _not_unicode(obj)
    if bad is not None:
        raise _fail(f'field "{bad}": holds a lone surrogate escape (\\ud800-\\udfff), which is not Unicode text: expected UTF-8 text', source, line)

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

    rubric = rubric_from_json(obj["rubric"], "rubric", source, line) if obj.get("rubric") is not None else None
    reference = obj.get("reference")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise _fail(f'field "reference": expected a non-empty string (a reference answer), got {json_type(reference)}', source, line)

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
        rubric=rubric,
        reference=reference,
    )


_SCORE_KEY = re.compile(r"^score(\d+)_description$")


def rubric_from_json(value: Any, fld: str = "rubric", source: str = "<input>", line: int = 0) -> Rubric:
    """A rubric as users write it: a text; Prometheus' {"criteria", "score1_description", ...}; or
    {"criteria", "scores": {"1": "...", ...}} (a list of {"score", "description"} also works)."""
    if isinstance(value, str):
        if not value.strip():
            raise _fail(f'field "{fld}": is empty', source, line)
        return Rubric(value)
    if not isinstance(value, dict):
        raise _fail(f'field "{fld}": expected a text or an object {{"criteria", "score1_description", ...}}, got {json_type(value)}', source, line)
    criteria = value.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise _fail(f'field "{fld}.criteria": expected a non-empty string (what the judge grades)', source, line)
    scores: dict[int, str] = {}
    for key, text in value.items():
        m = _SCORE_KEY.match(key)
        if m:
            scores[int(m.group(1))] = text
    given = value.get("scores")
    if given is not None:
        if isinstance(given, dict):
            items = list(given.items())
        elif isinstance(given, list) and all(isinstance(x, dict) for x in given):
            items = [(x.get("score"), x.get("description")) for x in given]
        else:
            raise _fail(f'field "{fld}.scores": expected an object {{"1": "description", ...}} or a list of {{"score", "description"}}', source, line)
        for key, text in items:
            try:
                scores[int(key)] = text
            except (TypeError, ValueError):
                raise _fail(f'field "{fld}.scores": {json.dumps(key)} is not an integer score', source, line) from None
    unknown = [k for k in value if k not in ("criteria", "scores") and not _SCORE_KEY.match(k)]
    if unknown:
        raise _fail(f'field "{fld}": unknown key {unknown[0]!r}; expected "criteria" and "score1_description"... or "scores"', source, line)
    for score, text in scores.items():
        if not isinstance(text, str) or not text.strip():
            raise _fail(f'field "{fld}": the description of score {score} is not a non-empty string', source, line)
    return Rubric(criteria, tuple(sorted(scores.items())))


