"""Principles filtered by the label (paper §2.2, Table 1): sample m principle+score generations per labelled
record and keep the principles of the runs whose scores single out the labelled best response.

The rule is `rules.is_correct`, the same function that judges evaluation, meta RM labels, rejective
sampling and the RL reward. Every kept principle carries its provenance (model, template, data, filter
settings) and the key of the record it was filtered on, so that scoring that very record with it is
recognised as the oracle setting the paper measured, never mistaken for a held-out result.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Iterable, Iterator, Sequence

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record, label_key
from grm_cli.core.rules import is_correct, label_margin, label_of
from grm_cli.engine.base import Engine
from grm_cli.errors import InputError
from grm_cli.scoring.job import ScoreJob
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.results import SampleResult, ScoreResult
from grm_cli.scoring.runner import no_progress, run_resumable, silent
from grm_cli.scoring.settings import PAPER_TEMPERATURE, ScoreSettings

FILTER_RULE = "the run's scores single out the labelled best response (Eq. 10; a tie is wrong)"
DEFAULT_RUNS = 4  # m, the paper's setting for its preliminary experiment


@dataclass(frozen=True)
class FilteredPrinciples:
    """What the filter kept for one record: the chosen principles (the agreeing run with the widest
    margin; None when no run agreed), every agreeing run's principles, and where they came from."""

    record: Record
    principles: str | None
    agreed: int
    runs: int
    candidates: tuple[dict, ...]
    provenance: dict

    def to_json(self) -> dict:
        return {
            "id": self.record.id,
            "prompt": self.record.query,
            "subset": self.record.subset,
            "principles": self.principles,
            "agreed": self.agreed,
            "runs": self.runs,
            "candidates": list(self.candidates),
            "filtered_on": label_key(self.record),
            "provenance": self.provenance,
        }


def agreeing_samples(result: ScoreResult) -> list[SampleResult]:
    """Samples whose own scores are right by the one rule and that stated principles."""
    label = label_of(result.record, "filtering principles")
    return [s for s in result.samples if s.judgment.principles and is_correct(s.scores, label)]


def filter_result(result: ScoreResult, provenance: dict) -> FilteredPrinciples:
    label = label_of(result.record, "filtering principles")
    kept = agreeing_samples(result)
    best_first = sorted(kept, key=lambda s: (-label_margin(s.scores, label), s.index))
    candidates = tuple(
        {"sample": s.index, "principles": s.judgment.principles, "scores": list(s.scores), "margin": label_margin(s.scores, label)}
        for s in best_first
    )
    return FilteredPrinciples(
        result.record,
        best_first[0].judgment.principles if best_first else None,
        len(kept),
        len(result.samples),
        candidates,
        provenance,
    )


def filter_settings(runs: int = DEFAULT_RUNS, *, temperature: float | None = None, seed: int = 0, max_tokens: int = 512) -> ScoreSettings:
    """m sampled judgments in mode "self" (the model must write its own principles to be filtered)."""
    if runs < 1:
        raise InputError(f"--filter-samples {runs}: expected a positive number of runs")
    return ScoreSettings(k=runs, temperature=PAPER_TEMPERATURE if temperature is None else temperature, seed=seed, max_tokens=max_tokens)


def provenance(engine: Engine, template: Template, settings: ScoreSettings, data: str) -> dict:
    return {
        "model": engine.name,
        "template": template.name,
        "data": data,
        "filter": {"rule": FILTER_RULE, "runs": settings.k, "temperature": settings.effective_temperature, "seed": settings.seed, "max_tokens": settings.max_tokens},
    }


def filter_principles(
    records: Iterable[Record],
    engine: Engine,
    template: Template,
    settings: ScoreSettings,
    *,
    data: str,
    chunk: int = 8,
) -> Iterator[FilteredPrinciples]:
    """Stream the filter's verdict per record, in input order. Principles already in a record are ignored:
    the model writes its own, which is what is being filtered."""
    records = list(records)
    for rec in records:
        label_of(rec, "filtering principles")  # fail before generating anything
    prov = provenance(engine, template, settings, data)
    own = (replace(rec, principles=None) for rec in records)
    for result in score_records(own, engine, template, settings, chunk=chunk):
        yield filter_result(result, prov)


_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class FilterSplit:
    """Records split by query for an honest number: principles are filtered on `filter_side` and applied to
    `held_out` records that share a query with it (other responses, other labels); `left_out` records have
    a query seen only once, so no held-out principles can exist for them."""

    filter_side: tuple[Record, ...]
    held_out: tuple[Record, ...]
    left_out: tuple[Record, ...]


def split_for_filter(records: Sequence[Record], fraction: float, seed: int = 0) -> FilterSplit:
    """Per query with two or more labelled records: a seeded `fraction` of them (at least one, and never
    all) goes to the filter, the rest is held out. Queries seen once are left out of both sides."""
    if not 0.0 < fraction < 1.0:
        raise InputError(f"--filter-split {fraction}: expected a fraction between 0 and 1 (the share of each query's records used to filter)")
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(_WS.sub(" ", rec.query).strip(), []).append(rec)
    to_filter, held, left = set(), set(), []
    for query, recs in groups.items():
        if len(recs) < 2:
            left.extend(recs)
            continue
        ids = [r.id for r in recs]
        random.Random(f"{seed}\x00{query}").shuffle(ids)
        cut = min(len(ids) - 1, max(1, round(len(ids) * fraction)))
        to_filter.update(ids[:cut])
        held.update(ids[cut:])
    return FilterSplit(
        tuple(r for r in records if r.id in to_filter),
        tuple(r for r in records if r.id in held),
        tuple(left),
    )


def filter_resumable(records: Sequence[Record], engine: Engine, template: Template, settings: ScoreSettings, data: str, *, output=None, force: bool = False,
                     chunk: int = 1, track=no_progress, notify=silent, on_result=None) -> list[dict]:
    """The label filter through the one resumable runner: the lines of every record (stored ones too)."""
    records = ScoreJob(template, settings).prepare(records, engine)
    run = {**provenance(engine, template, settings, data), "kind": "filtered principles"}

    def produce(todo):
        for f in filter_principles(todo, engine, template, settings, data=data, chunk=chunk):
            yield f.record.id, {**f.to_json(), "run": run}, f

    ordered = list(run_resumable(records, produce, output=output, run=run, force=force, track=track, notify=notify, on_line=on_result).values())
    if ordered:
        runs = settings.k
        with_p = sum(1 for x in ordered if x["principles"])
        dist = ", ".join(f"{a}/{runs}: {sum(1 for x in ordered if x['agreed'] == a)}" for a in range(runs, -1, -1))
        notify(f"kept principles for {with_p} of {len(ordered)} records (runs agreeing with the label: {dist}){f'; saved in {output}' if output else ''}", "dim")
    return ordered
