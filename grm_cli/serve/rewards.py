"""Completions of RL rollouts as GRM records, and the GRM's verdicts back as one reward per completion.

Several completions of one prompt are judged together in one pointwise record (the GRM compares them, as
the paper's RL data does), up to 16 per record. The reward of a completion is its mean score over the
samples that parsed (1..10 with the default template): GRPO normalises rewards within a group, so the
scale does not matter. A completion whose record no sample could score gets None: never a silent 0.
"""

from __future__ import annotations

import json
from typing import Sequence

from grm_cli.core.records import MAX_RESPONSES, Record, record_from_dict
from grm_cli.errors import InputError


def _key(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def completion_text(completion) -> str:
    """TRL's completions: a string, or (conversational) a list of messages whose text is the answer."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) for m in completion):
        return "".join(str(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant")
    if isinstance(completion, dict) and "content" in completion:
        return str(completion["content"])
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def group_completions(prompts: Sequence, completions: Sequence, template=None) -> tuple[list[Record], list[tuple[int, int] | None]]:
    """Records per prompt (a string or a list of messages) holding its completions, as many per record as
    the template takes (16 for pointwise, 1 for single); slots[i] = (record index, response index) of
    completion i, or None for an empty completion (nothing to judge: `rewards_from_results` gives it
    the lowest score)."""
    if len(prompts) != len(completions):
        raise InputError(f"{len(prompts)} prompts for {len(completions)} completions", "completions")
    most = min(MAX_RESPONSES, template.max_responses) if template is not None else MAX_RESPONSES
    least = template.min_responses if template is not None else 1
    texts = [completion_text(c) for c in completions]
    order: list[str] = []
    members: dict[str, list[int]] = {}
    first: dict[str, object] = {}
    for i, p in enumerate(prompts):
        if not texts[i].strip():
            continue
        k = _key(p)
        if k not in members:
            order.append(k)
            members[k] = []
            first[k] = p
        members[k].append(i)
    records: list[Record] = []
    slots: list[tuple[int, int] | None] = [None] * len(prompts)
    for k in order:
        idx = members[k]
        if len(idx) < least:
            raise InputError(f'template "{template.name}" takes at least {least} responses per record; a prompt has {len(idx)} non-empty completions', "completions")
        n_parts = -(-len(idx) // most)
        size = -(-len(idx) // n_parts)  # even parts: never a last part below the template's minimum
        for start in range(0, len(idx), size):
            part = idx[start: start + size]
            rec = record_from_dict({"prompt": first[k], "responses": [texts[i] for i in part]}, "completions", part[0])
            for j, i in enumerate(part):
                slots[i] = (len(records), j)
            records.append(rec)
    return records, slots


def rewards_from_results(results: Sequence, slots: Sequence[tuple[int, int] | None], count: int, *, empty: float = 1.0) -> list[float | None]:
    """Mean score per parsed sample for each completion, in the completions' order; `empty` for an empty
    completion (the template's lowest score), None where no sample parsed."""
    out: list[float | None] = []
    for i in range(count):
        if slots[i] is None:
            out.append(empty)
            continue
        r, j = slots[i]
        v = results[r].verdict
        out.append(None if v.totals is None or not v.votes else v.totals[j] / v.votes)
    return out
