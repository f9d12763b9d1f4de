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
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from grm_cli.core.prompt import Template, render
from grm_cli.core.records import Record
from grm_cli.core.rules import is_correct, label_of
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.results import SampleResult, ScoreResult
from grm_cli.scoring.runner import no_progress, run_resumable, silent
from grm_cli.scoring.settings import ScoreSettings, run_signature

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


def sample_rft(records: Sequence[Record], engine, template: Template, settings: ScoreSettings, output: str | Path, *, hint: bool = True, force: bool = False,
               chunk: int = 1, track=no_progress, notify=silent, on_line=None) -> dict:
    """SPCT's rejective sampling as a resumable stage: every record's decision goes to `output`
    (TRL prompt-completion examples inside), and the acceptance counts over the whole file come back."""
    run = {**run_signature(engine.name, template.name, settings), "kind": "rft data", "hint": hint}

    def produce(todo):
        for r in rft_data(todo, engine, template, settings, hint=hint, chunk=chunk):
            yield r.record.id, {**r.to_json(), "run": run}, r

    done = list(run_resumable(records, produce, output=output, run=run, force=force, track=track, notify=notify, on_line=on_line).values())

    def count(status: str) -> int:
        return sum(1 for x in done if x["status"] == status)

    stats = {
        "records": len(done), "too_easy": count("too_easy"), "nothing_right": count("nothing_right"), "kept": count("kept"),
        "wrong_rejected": sum(x["wrong"] for x in done), "examples": sum(len(x["examples"]) for x in done),
        "hinted_kept": sum(1 for x in done for e in x["examples"] if e["hinted"]),
        "hinted_drawn": sum(1 for x in done if x["hinted_kept"] is not None),
    }
    notify(f"{stats['records']} records: {stats['too_easy']} too easy (all {settings.k} right, dropped), {stats['nothing_right']} with nothing right, "
           f"{stats['kept']} kept; {stats['wrong_rejected']} wrong samples rejected; {stats['examples']} examples "
           f"({stats['hinted_kept']} hinted, kept of {stats['hinted_drawn']} drawn) in {output}", None)
    return stats


def labelled_for_training(records: Sequence[Record], template: Template, what: str = "rejective sampling") -> list[Record]:
    """The records rejective sampling and RL take: each with a label and a response count the template
    takes, and no given principles (the model writes its own). Checked before any model loads."""
    out = []
    for rec in records:
        template.check_count(rec)
        label_of(rec, what)
        out.append(replace(rec, principles=None))
    return out


def rejective_sampling(records: Sequence[Record], engine, template: Template, settings: ScoreSettings, output: str | Path, *, hint: bool = True,
                       force: bool = False, chunk: int = 1, on_long: str = "error", reporter=None) -> dict:
    """SPCT's first stage before the fit, as `grm train rft-data` and `grm train rft` both run it: the labelled
    records fitted to the context (the hinted prompt, the longest, is measured), sampled into `output`
    (resumable), and the counts with the acceptance rates the run log keeps."""
    from grm_cli.scoring.job import QuietReporter, ScoreJob

    reporter = reporter or QuietReporter()
    ready = ScoreJob(template, replace(settings, hint=hint), on_long=on_long).prepare(records, engine, reporter)
    reporter.truncated(ready)
    stats = sample_rft(ready, engine, template, settings, output, hint=hint, force=force, chunk=chunk,
                       track=reporter.progress(f"rejective sampling (N={settings.k})"), notify=reporter.note, on_line=reporter.line)
    n = max(1, stats["records"])
    return {**stats, "too_easy_rate": stats["too_easy"] / n, "kept_rate": stats["kept"] / n,
            "hinted_kept_rate": stats["hinted_kept"] / max(1, stats["hinted_drawn"])}
