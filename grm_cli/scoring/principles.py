"""Principles outside a scoring run: which given principles a record is scored with (its own field, or a
saved file's by id or query), and generating the model's principles for queries (`grm principles`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record
from grm_cli.core.sampling import sample_seed
from grm_cli.engine.base import Engine, GenerationRequest
from grm_cli.errors import InputError
from grm_cli.scoring.plan import parse_sample
from grm_cli.scoring.results import GivenPrinciples
from grm_cli.scoring.settings import ScoreSettings

# -- scoring -------------------------------------------------------------------------------------
PrinciplesLookup = Callable[[Record], "GivenPrinciples | None"]


def principles_for(rec: Record, lookup: PrinciplesLookup | None, settings: ScoreSettings | None = None) -> GivenPrinciples | None:
    """Given principles for a record: its own "principles" field, else the lookup's; none in mode "none"."""
    if settings is not None and settings.principles == "none":
        return None
    if rec.principles:
        return GivenPrinciples(rec.principles, {"from": "record"})
    return lookup(rec) if lookup else None



# -- principles ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrinciplesResult:
    record: Record
    judgment: Judgment  # principles and criteria parsed; no scores asked for
    model: str
    template: str
    seed: int
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        j = self.judgment
        return {
            "id": self.record.id,
            "prompt": self.record.query,
            "principles": j.principles,
            "criteria": [{"text": c.text, "weight": c.weight} for c in j.criteria],
            "model": self.model,
            "template": self.template,
            "seed": self.seed,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
        }


def generate_principles(
    records: Iterable[Record],
    engine: Engine,
    template: Template,
    *,
    seed: int = 0,
    temperature: float = 0.0,
    max_tokens: int = 256,
) -> Iterator[PrinciplesResult]:
    """The model's principles for each query: its answer is pre-filled with the principles label and
    stopped at the critique label, so nothing beyond the principles is generated."""
    for rec in records:
        shown = rec if rec.responses else _without_responses(rec)
        p = render(template, shown)
        prefix = template.principles_label
        gen = engine.generate(
            GenerationRequest(
                p.messages,
                prefix,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=sample_seed(seed, rec.id, 0),
                stop=template.principles_stop(),
            )
        )
        text = prefix + gen.text
        j = parse_sample(template, text, max(1, len(rec.responses)), scores_from=len(text))
        yield PrinciplesResult(rec, j, engine.name, template.name, seed, gen.completion_tokens, gen.seconds)


def _without_responses(rec: Record) -> Record:
    """A query alone: show a placeholder so the template's layout still reads naturally."""
    return replace(rec, responses=("(No responses yet: state the criteria a good response must meet.)",))


_WS = re.compile(r"\s+")


def principles_lookup(entries: Sequence[dict], source: str) -> PrinciplesLookup:
    """Match saved principles to records: by id (when the entry also names a prompt, only if it is this
    record's query: ids like "1", "2" repeat across files), else by the query text, else one entry for all.

    An entry whose principles are null (the label filter kept none for that query) gives None: that record
    is scored in mode "self", and its result says so. Several entries for one query (the filter run on
    several labelled pairs of it): the one whose runs agreed with the label most often wins."""

    def given(e: dict) -> GivenPrinciples | None:
        return GivenPrinciples(e["principles"], {"file": source, **(e.get("provenance") or {})}) if e.get("principles") else None

    def norm(text: object) -> str:
        return _WS.sub(" ", str(text)).strip()

    by_id: dict[str, tuple[str | None, GivenPrinciples | None]] = {}
    by_query: dict[str, tuple[float, GivenPrinciples | None]] = {}
    for e in entries:
        g = given(e)
        if e.get("id") is not None:
            by_id[str(e["id"])] = (norm(e["prompt"]) if e.get("prompt") else None, g)
        if e.get("prompt"):
            key = norm(e["prompt"])
            rank = (e.get("agreed") or 0) / (e.get("runs") or 1) if g else -1.0
            if key not in by_query or rank > by_query[key][0]:
                by_query[key] = (rank, g)
    # One entry with neither id nor prompt (a plain-text file) applies to every record.
    only = entries[0] if len(entries) == 1 and entries[0].get("id") is None and not entries[0].get("prompt") else None

    def lookup(rec: Record) -> GivenPrinciples | None:
        key = norm(rec.query)
        if rec.id in by_id:
            prompt, g = by_id[rec.id]
            if prompt is None or prompt == key:
                return g
        if key in by_query:
            return by_query[key][1]
        if only is not None:
            return given(only)
        raise InputError(f'no principles for record id {rec.id!r} in {source} (matched by "id" and "prompt", then by "prompt")', rec.source, rec.line)

    return lookup


def principles_fingerprint(entries: Sequence[dict]) -> str:
    """Which principles a run used, for its signature: resuming with other principles is refused."""
    import hashlib
    import json as _json

    h = hashlib.sha256(_json.dumps([[e.get("id"), e.get("prompt"), e.get("principles")] for e in entries], ensure_ascii=False).encode())
    return h.hexdigest()[:12]
