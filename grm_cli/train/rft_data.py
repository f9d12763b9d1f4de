"""Rejective fine-tuning data (paper §3.2, App. C.1): sample N trajectories per labelled record with the
current GRM, keep the right ones, drop records that are too easy, and add hinted trajectories.

- N unhinted samples per record (default 3, temperature 0.5, responses shuffled per sample).
- Right or wrong by `rules.is_correct` on the sample's own scores (a tie is wrong; unparsed is wrong).
- All N right: the record is "too easy" and gives no data (the paper drops it from RFT and RL data).
- Otherwise the right unhinted samples are kept, and one hinted sample is drawn ("The best response is:
  Response j" appended to the input, j in the order that sample shows); it is kept if right. The training
  input of a hinted trajectory is the prompt WITHOUT the hint, so the model learns to reach the verdict alone.

Each record becomes one JSON line (inspectable, resumable with `--output`): its verdict, counts, and the
kept examples in TRL's conversational prompt-completion form, ready for supervised fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Iterator, Sequence

from grm_cli.core.rules import label_of
from grm_cli.scoring.pipeline import SampleResult, ScoreResult, ScoreSettings, score_records
from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record
from grm_cli.core.rules import is_correct

DEFAULT_SAMPLES = 3  # N_RFT in the paper


@dataclass(frozen=True)
class RFTRecord:
    record: Record
    status: str  # "kept" | "too_easy" | "nothing_right"
    right: int  # unhinted samples that were right
    wrong: int  # unhinted samples rejected as wrong
    hinted_kept: bool | None  # None: no hinted sample drawn
    examples: tuple[dict, ...]

    def to_json(self) -> dict:
        return {
            "id": self.record.id,
            "status": self.status,
            "right": self.right,
            "wrong": self.wrong,
            "hinted_kept": self.hinted_kept,
            "examples": list(self.examples),
        }


def example(template: Template, rec: Record, s: SampleResult, *, hinted: bool) -> dict:
    """One training example: the unhinted prompt the sample saw (same response order) and its whole text."""
    prompt = render(template, rec, s.order)
    return {
        "prompt": list(prompt.messages),
        "completion": [{"role": "assistant", "content": s.judgment.text}],
        "hinted": hinted,
        "order": list(s.order),
        "scores": list(s.scores) if s.scores is not None else None,
        "sample": s.index,
        "seed": s.seed,
    }


def decide(template: Template, unhinted: ScoreResult, hinted: ScoreResult | None) -> RFTRecord:
    """The paper's rules for one record, from its unhinted samples and (when drawn) its hinted one."""
    rec = unhinted.record
    label = label_of(rec, "rejective sampling")
    right = [s for s in unhinted.samples if is_correct(s.scores, label)]
    wrong = len(unhinted.samples) - len(right)
    if wrong == 0:
        return RFTRecord(rec, "too_easy", len(right), 0, None, ())
    kept = [example(template, rec, s, hinted=False) for s in right]
    hinted_kept = None
    if hinted is not None:
        good = [s for s in hinted.samples if is_correct(s.scores, label)]
        hinted_kept = bool(good)
        kept += [example(template, rec, s, hinted=True) for s in good]
    return RFTRecord(rec, "kept" if kept else "nothing_right", len(right), wrong, hinted_kept, tuple(kept))


def rft_data(
    records: Iterable[Record],
    engine,
    template: Template,
    settings: ScoreSettings,
    *,
    hint: bool = True,
    chunk: int = 8,
) -> Iterator[RFTRecord]:
    """Stream one RFTRecord per labelled record, in input order. `settings.k` is N. Hinted samples use
    sample indices after the N unhinted ones, so their seeds are fresh."""
    records = [replace(r, principles=None) for r in records]
    for rec in records:
        label_of(rec, "rejective sampling")
    # the hinted draw samples like the unhinted ones (not greedily as k = 1 would), with fresh indices
    hinted_settings = replace(settings, k=1, hint=True, temperature=settings.effective_temperature, first_sample=settings.first_sample + settings.k)
    batch: list[Record] = []

    def flush(batch: Sequence[Record]) -> Iterator[RFTRecord]:
        unhinted = list(score_records(batch, engine, template, settings, chunk=chunk))
        need = [r.record for r in unhinted if any(not is_correct(s.scores, label_of(r.record, "rejective sampling")) for s in r.samples)] if hint else []
        hinted = {r.record.id: r for r in score_records(need, engine, template, hinted_settings, chunk=chunk)} if need else {}
        for r in unhinted:
            yield decide(template, r, hinted.get(r.record.id))

    for rec in records:
        batch.append(rec)
        if len(batch) >= chunk:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)
