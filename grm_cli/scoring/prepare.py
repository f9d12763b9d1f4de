"""Checking records before anything is generated: response counts, and the context each sample needs
(cutting the middle of long responses with --on-long truncate)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record
from grm_cli.engine.base import Engine, budget
from grm_cli.errors import InputError
from grm_cli.scoring.plan import sample_plan
from grm_cli.scoring.principles import GivenPrinciples, PrinciplesLookup, principles_for
from grm_cli.scoring.settings import ScoreSettings


def _tokens_needed(rec: Record, engine: Engine, template: Template, settings: ScoreSettings, principles: GivenPrinciples | None) -> tuple[int, int]:
    """(prompt tokens, tokens needed) of the record's most demanding sample, by the engines' own rule."""
    worst = (0, 0)
    for sample in sample_plan(rec, template, settings, principles):
        for call in sample.calls:
            request = call.request
            tokens = engine.count_tokens(request.messages, request.assistant_prefix)
            worst = max(worst, (tokens + budget(request), tokens))
    return worst[1], worst[0]


CUT_MARK = "\n[... {n} characters cut by grm to fit the context ...]\n"


def truncate_to_fit(rec: Record, engine: Engine, template: Template, settings: ScoreSettings, principles: GivenPrinciples | None = None) -> Record:
    """Cut the middle of the responses (longest most) until the prompt fits; the query is never cut."""
    originals = rec.responses
    current = rec
    for _ in range(8):
        tokens, needed = _tokens_needed(current, engine, template, settings, principles)
        excess = needed - engine.n_ctx
        if excess <= 0:
            return current
        chars_per_token = max(1.0, sum(map(len, current.responses)) / max(1, tokens))
        cut_total = int(excess * chars_per_token * 1.2) + 64
        lengths = [len(r) for r in originals]
        total = sum(lengths)
        already = [len(o) - _kept(c, o) for c, o in zip(current.responses, originals)]
        new, cut_idx = [], []
        for i, (orig, length) in enumerate(zip(originals, lengths)):
            cut = min(length - 40, already[i] + int(cut_total * length / max(total, 1)))
            if cut <= 0:
                new.append(orig)
                continue
            head = (length - cut) // 2
            new.append(orig[:head] + CUT_MARK.format(n=cut) + orig[length - (length - cut - head):])
            cut_idx.append(i)
        if not cut_idx or tuple(new) == current.responses:
            break
        current = replace(rec, responses=tuple(new), truncated=tuple(cut_idx))
    raise InputError(
        f"the prompt does not fit in the context ({engine.n_ctx} tokens) even with its responses cut: raise --ctx or lower --max-tokens",
        rec.source, rec.line,
    )


def _kept(cut: str, original: str) -> int:
    """How many characters of `original` a cut response still holds."""
    m = re.search(r"\n\[\.\.\. (\d+) characters cut by grm", cut)
    return len(original) - int(m.group(1)) if m else len(original)


def fit_record(rec: Record, engine: Engine, layout, settings: ScoreSettings, lookup: PrinciplesLookup | None = None, *, on_long: str = "error") -> Record:
    """The record as its samples fit the context: as it is, or with the middle of its responses cut
    (on_long="truncate"; marked in the output); otherwise an error that says what to change."""
    principles = principles_for(rec, lookup, settings)
    tokens, needed = _tokens_needed(rec, engine, layout, settings, principles)
    if needed <= engine.n_ctx:
        return rec
    if on_long != "truncate":
        raise InputError(
            f"the prompt is {tokens} tokens; with --max-tokens {settings.max_tokens} it needs {needed}, "
            f"but the context is {engine.n_ctx}: raise --ctx, lower --max-tokens, or pass --on-long truncate",
            rec.source, rec.line,
        )
    return truncate_to_fit(rec, engine, layout, settings, principles)


def fit_to_context(records: Sequence[Record], engine: Engine, layout, settings: ScoreSettings, lookup: PrinciplesLookup | None = None, *,
                   on_long: str = "error", errors: list | None = None) -> list[Record]:
    """`fit_record` over records already checked: `ScoreJob.fit` is its one caller. With an `errors` list,
    records that cannot fit are collected there and left out; otherwise the first one raises."""
    return _each(records, lambda rec: fit_record(rec, engine, layout, settings, lookup, on_long=on_long), errors)


def _each(records: Sequence[Record], step, errors: list | None) -> list[Record]:
    ready = []
    for rec in records:
        try:
            ready.append(step(rec))
        except InputError as e:
            if errors is None:
                raise
            errors.append(e)
    return ready
