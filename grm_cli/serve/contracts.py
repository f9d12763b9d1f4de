"""The request and answer shapes of `grm serve`'s routes, as plain functions on decoded JSON.

Validation here is the project's own (`record_from_dict`, the one validator `grm score` uses on files), so
a bad record over HTTP gets the same message, naming the record and the field, as on the command line.
The pydantic models in `schema.py` only document these shapes for OpenAPI; they never judge a body.

OpenRLHF's remote reward model (`--remote_rm_url http://HOST:PORT/get_reward`) posts
`{"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [...]}` and reads `rewards`
(used for the advantage), `scores` (0..1, for dynamic filtering) and `extra_logs` (per-sample lists it
logs to wandb). Older OpenRLHF reads only `rewards`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from grm_cli.core.records import MAX_RESPONSES, Record, record_from_dict
from grm_cli.errors import InputError

MAX_RECORDS = 256
MAX_COMPLETIONS = MAX_RECORDS * MAX_RESPONSES


def parse_records(body: object) -> list[Record]:
    """/score's body: one record, a list of records, or {"records": [...]}; errors name the record's index."""
    if isinstance(body, dict) and "records" in body:
        body = body["records"]
    items = body if isinstance(body, list) else [body]
    if not items or body is None:
        raise InputError("no records: expected a record object, a list of them, or {\"records\": [...]}", "request")
    if len(items) > MAX_RECORDS:
        raise InputError(f"{len(items)} records in one request: at most {MAX_RECORDS}", "request")
    records: list[Record] = []
    seen: dict[str, int] = {}
    for i, obj in enumerate(items):
        rec = record_from_dict(obj, "request record", i)
        if rec.id in seen:  # as `grm score` treats a file: a repeated id is an error, repeated content a copy
            if "id" in obj:
                raise InputError(f'field "id": duplicate id {rec.id!r} (first in record {seen[rec.id]})', "request record", i)
            copy = 2
            while f"{rec.id}#{copy}" in seen:
                copy += 1
            rec = replace(rec, id=f"{rec.id}#{copy}")
        seen[rec.id] = i
        records.append(rec)
    return records


def parse_openrlhf(body: object) -> tuple[list[str], list[str]]:
    """OpenRLHF's request: "query" (prompt + response texts) and "prompts" (their prompts) -> (prompts, responses)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), list):
        raise InputError('expected {"query": [prompt+response, ...], "prompts": [prompt, ...]}', "request")
    queries = body["query"]
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or len(prompts) != len(queries):
        raise InputError('field "prompts": expected one prompt per query (OpenRLHF sends both), to split each query into prompt and response', "request")
    if len(queries) > MAX_COMPLETIONS:
        raise InputError(f"{len(queries)} queries in one request: at most {MAX_COMPLETIONS}", "request")
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts)):
        if not isinstance(q, str) or not isinstance(p, str):
            raise InputError(f"query {i}: expected strings in \"query\" and \"prompts\"", "request")
        if not q.startswith(p):
            raise InputError(f"query {i}: does not start with its prompt, so the response cannot be told apart", "request")
        responses.append(q[len(p):])
    return list(prompts), responses


def parse_completions(body: object) -> tuple[list, list]:
    """/rewards' body (what the TRL and verl hooks send): {"prompts": [...], "completions": [...]}, each a
    string or a list of chat messages."""
    if not isinstance(body, dict):
        raise InputError('expected {"prompts": [...], "completions": [...]}', "request")
    prompts, completions = body.get("prompts"), body.get("completions")
    for name, value in (("prompts", prompts), ("completions", completions)):
        if not isinstance(value, list):
            raise InputError(f'field "{name}": expected a list', "request")
    if len(prompts) != len(completions):
        raise InputError(f'fields "prompts" and "completions": {len(prompts)} prompts for {len(completions)} completions', "request")
    if len(prompts) > MAX_COMPLETIONS:
        raise InputError(f"{len(prompts)} completions in one request: at most {MAX_COMPLETIONS}", "request")
    for i, (p, c) in enumerate(zip(prompts, completions)):
        if not _text_or_messages(p):
            raise InputError(f'field "prompts", item {i}: expected a string or a list of {{"role", "content"}} messages', "request")
        if not _text_or_messages(c):
            raise InputError(f'field "completions", item {i}: expected a string or a list of {{"role", "content"}} messages', "request")
    return prompts, completions


def _text_or_messages(x: object) -> bool:
    if isinstance(x, str):
        return True
    return isinstance(x, list) and all(isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in x)


def votes_per_completion(results: Sequence, slots: Sequence[tuple[int, int] | None]) -> list[int]:
    """How many samples parsed for each completion's record (0 for an empty completion)."""
    return [0 if s is None else int(results[s[0]].verdict.votes or 0) for s in slots]


def openrlhf_answer(rewards: Sequence[float | None], votes: Sequence[int], score_range: tuple[int, int], unparsed_reward: float | None) -> dict:
    """OpenRLHF's answer: `rewards` (the mean score; `unparsed_reward` where no sample parsed, else null),
    `scores` (the reward scaled to 0..1 over the template's range, clipped), `extra_logs` (per completion:
    `grm_parsed` 1/0 and `grm_votes`, the parsed samples), and `unparsed` (the indices without a score)."""
    unparsed = [i for i, r in enumerate(rewards) if r is None]
    filled = [unparsed_reward if r is None else r for r in rewards]
    lo, hi = score_range
    scores = [None if r is None else min(1.0, max(0.0, (r - lo) / (hi - lo))) if hi > lo else 0.0 for r in filled]
    return {
        "rewards": filled,
        "scores": scores,
        "extra_logs": {"grm_parsed": [0.0 if r is None else 1.0 for r in rewards], "grm_votes": [float(v) for v in votes]},
        "unparsed": unparsed,
    }
