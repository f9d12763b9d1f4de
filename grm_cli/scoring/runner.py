"""The one resumable run: `grm score`, `eval`, `principles`, `principles --filter` and `train rft-data`
(and any Python caller) write their results through it.

Each finished line goes to the results file at once (appended, fsynced), so a killed run loses at most
the line being written; run again with the same settings and the records the file holds are skipped.
A file made with other settings is refused (`io.results.ResultsFile` checks the run's signature).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, Optional, Sequence

from grm_cli.core.records import Record
from grm_cli.io.results import ResultsFile

Produce = Callable[[list[Record]], Iterable[tuple[str, dict, object]]]  # todo -> (record id, JSON line, item)
Track = Callable[[int], ContextManager[Callable[[], None]]]  # total -> a context giving advance()
Notify = Callable[[str, Optional[str]], None]


@contextmanager
def no_progress(total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


def silent(message: str, style: Optional[str] = None) -> None:
    pass


def run_resumable(
    records: Sequence[Record],
    produce: Produce,
    *,
    output: str | Path | None = None,
    run: dict | None = None,
    force: bool = False,
    what: str = "records",
    track: Track = no_progress,
    notify: Notify = silent,
    on_line: Callable[[dict, object], None] | None = None,
) -> dict[str, dict]:
    """Run `produce` over the records `output` does not hold yet, saving each line as it comes.

    Returns the lines of every record of `records` by id, in input order: those stored by an earlier run
    and those made now. `on_line(line, item)` sees each new line (to print it); `track` shows progress."""
    lines: dict[str, dict] = {}
    with ExitStack() as stack:
        writer = stack.enter_context(ResultsFile(output, run, force=force)) if output else None
        todo = list(records)
        if writer:
            if writer.existing.repaired_bytes:
                notify(f"{output}: cut a torn last line ({writer.existing.repaired_bytes} bytes, a run killed mid-write); that record is redone", "yellow")
            todo = [r for r in records if r.id not in writer.done]
            lines.update({r.id: writer.done[r.id] for r in records if r.id in writer.done})
            if len(todo) < len(records):
                notify(f"resuming: skipping {len(records) - len(todo)} {what} already in {output}", "dim")
        advance = stack.enter_context(track(len(todo)))
        try:
            for record_id, line, item in produce(todo):
                lines[record_id] = line
                if writer:
                    writer.write(line)
                if on_line:
                    on_line(line, item)
                advance()
        except KeyboardInterrupt:
            if writer:
                notify(f"{len(writer.done)} of {len(records)} {what} are saved in {output}: rerun the same command to resume", None)
            raise
    return {r.id: lines[r.id] for r in records if r.id in lines}


def score_resumable(
    records: Sequence[Record],
    engine,
    template,
    settings,
    lookup=None,
    *,
    output: str | Path | None = None,
    force: bool = False,
    chunk: int = 1,
    meta_rm=None,
    probe=None,
    track: Track = no_progress,
    notify: Notify = silent,
    on_result: Callable[[dict, object], None] | None = None,
) -> tuple[list, dict[str, dict]]:
    """Score records through `run_resumable`: (results scored now, every stored line of `output` by id)."""
    from grm_cli.scoring.pipeline import score_records
    from grm_cli.scoring.plan import is_protocol
    from grm_cli.scoring.settings import run_signature

    results: list = []

    def produce(todo):
        for result in score_records(todo, engine, template, settings, lookup, chunk=chunk, meta_rm=meta_rm, probe=probe):
            results.append(result)
            yield result.record.id, result.to_json(), result

    stored = run_resumable(records, produce, output=output, run=run_signature(engine.name, template.name, settings, protocol=template.name if is_protocol(template) else None), force=force,
                           track=track, notify=notify, on_line=on_result)
    return results, (stored if output else {})
