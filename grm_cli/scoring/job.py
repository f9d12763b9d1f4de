"""Records in, results out: one scoring job, the one road `grm score`, `grm eval` and any Python caller take.

`ScoreJob.check` is the engine-free check of every record (before a model loads: response counts, the
protocol's fields, given principles); `ScoreJob.run` fits each record to the context, scores it through the
resumable runner (results file appended and fsynced as each record ends), measures the speed and writes the
run's logs (`io.run_logs`). What a person sees goes through one `Reporter`; `QuietReporter` shows nothing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

from grm_cli.core.records import Record
from grm_cli.errors import InputError
from grm_cli.io.run_logs import append_errors, append_speed_line, errors_path
from grm_cli.scoring.plan import check_record
from grm_cli.scoring.prepare import fit_to_context
from grm_cli.scoring.principles import PrinciplesLookup, principles_for
from grm_cli.scoring.runner import Track, no_progress, score_resumable
from grm_cli.scoring.settings import ScoreSettings


class Reporter(Protocol):
    """What a run tells a person (or a log): one object in place of progress/notify/line callbacks."""

    def progress(self, what: str) -> Track: ...

    def note(self, message: str, level: Optional[str] = None) -> None: ...

    def line(self, line: dict, result: object) -> None: ...

    def problems(self, problems: Sequence[InputError], path: Optional[Path]) -> None: ...

    def truncated(self, records: Sequence[Record]) -> None: ...

    def speed(self, records: int, stats: dict) -> None: ...


class QuietReporter:
    """A reporter that shows nothing (the server, the in-process judge, tests)."""

    def progress(self, what: str) -> Track:
        return no_progress

    def note(self, message: str, level: Optional[str] = None) -> None:
        pass

    def line(self, line: dict, result: object) -> None:
        pass

    def problems(self, problems: Sequence[InputError], path: Optional[Path]) -> None:
        pass

    def truncated(self, records: Sequence[Record]) -> None:
        pass

    def speed(self, records: int, stats: dict) -> None:
        pass


@dataclass
class RunReport:
    results: list  # ScoreResults scored now
    stored: dict  # every line of the results file by record id (resumed ones too); {} without an output
    records: list  # the records scored (after checks, --skip-invalid and truncation)
    skipped: list = field(default_factory=list)  # InputErrors of the records left out
    speed: dict | None = None

    def lines(self) -> list[dict]:
        """One results line per record, in input order: stored ones where a file holds them."""
        by_id = {r.record.id: r.to_json() for r in self.results}
        return [self.stored.get(r.id) or by_id[r.id] for r in self.records]


@dataclass
class ScoreJob:
    """One scoring run's fixed parts: what judges (`layout`: a template or protocol), how (settings), which
    given principles (lookup), and where results go (output, resumed unless `force`)."""

    layout: object
    settings: ScoreSettings
    lookup: PrinciplesLookup | None = None
    on_long: str = "error"
    skip_invalid: bool = False
    output: Path | None = None
    force: bool = False
    errors_file: Path | None = None
    what: str = "scoring"

    @property
    def errors_path(self) -> Path | None:
        return self.errors_file or (errors_path(self.output) if self.output else None)

    def check(self, records: Sequence[Record], reporter: Reporter = QuietReporter(), read_problems: Sequence[InputError] = ()) -> list[Record]:
        """Every record checked before any model loads; with skip_invalid the bad ones are left out (and
        reported, with the lines the reader already left out: `read_problems`), otherwise the first one
        raises with its FILE:LINE."""
        problems: list[InputError] = list(read_problems)
        ready = []
        for rec in records:
            try:
                check_record(self.layout, rec, self.settings, principles_for(rec, self.lookup, self.settings))
            except InputError as e:
                if not self.skip_invalid:
                    raise
                problems.append(e)
                continue
            ready.append(rec)
        self.report_problems(problems, reporter)
        return ready

    def prepare(self, records: Sequence[Record], engine, reporter: Reporter = QuietReporter()) -> list[Record]:
        """`check` and fit to the engine's context in one call: for callers that schedule the scoring
        themselves (the server's batches, rejective sampling, the label filter). Tokenizes every record."""
        return self.fit(self.check(records, reporter), engine, reporter)[0]

    def fit(self, records: Sequence[Record], engine, reporter: Reporter = QuietReporter()) -> tuple[list[Record], list[InputError]]:
        """The checked records as their samples fit the context (cut with on_long "truncate"), and those
        left out (with skip_invalid; otherwise the first that cannot fit raises)."""
        problems: list[InputError] = []
        ready = fit_to_context(records, engine, self.layout, self.settings, self.lookup, on_long=self.on_long,
                               errors=problems if self.skip_invalid else None)
        self.report_problems(problems, reporter)
        return ready, problems

    def run(self, records: Sequence[Record], engine, reporter: Reporter = QuietReporter(), *, chunk: int = 1, meta_rm=None, probe=None,
            on_result: Callable[[dict, object], None] | None = None) -> RunReport:
        """Fit, score (resumably) and measure `records`, which `check` has passed."""
        ready, problems = self.fit(records, engine, reporter)
        reporter.truncated(ready)
        before = dataclasses.replace(engine.stats) if hasattr(engine, "stats") else None
        started = time.perf_counter()

        def line(obj: dict, result: object) -> None:
            reporter.line(obj, result)
            if on_result is not None:
                on_result(obj, result)

        results, stored = score_resumable(ready, engine, self.layout, self.settings, self.lookup, output=self.output, force=self.force,
                                          chunk=chunk, meta_rm=meta_rm, probe=probe, track=reporter.progress(f"{self.what} (k={self.settings.k})"),
                                          notify=reporter.note, on_result=line)
        speed = self._speed(engine, before, time.perf_counter() - started, len(results), reporter)
        if getattr(engine, "hits", 0):
            reporter.note(f"reused {engine.hits} cached samples, generated {engine.misses}", "dim")
        return RunReport(results, stored if self.output else {}, ready, problems, speed)

    def report_problems(self, problems: list[InputError], reporter: Reporter) -> None:
        if not problems:
            return
        path = self.errors_path
        if path is not None:
            append_errors(path, problems)
        reporter.problems(problems, path)

    def _speed(self, engine, before, wall: float, records: int, reporter: Reporter) -> dict | None:
        if before is None or not records:
            return None
        stats = engine.stats.since(before, wall)
        if not stats.requests:
            return None
        out = stats.to_json()
        reporter.speed(records, out)
        if self.output is not None:
            problem = append_speed_line(self.output, records, engine.name, out)
            if problem:
                reporter.note(problem, "yellow")
        return out


def make_probe(settings: ScoreSettings, engine, layout, *, n_ctx: int, n_threads: int | None = None, verbose: bool = False):
    """The expected-score reader a run with score_mode "expected" needs (None otherwise)."""
    if settings.score_mode != "expected":
        return None
    from grm_cli.engine.probe import ScoreProbe

    lo, hi = (layout.score_min, layout.score_max)
    return ScoreProbe(engine, lo, hi, n_ctx=n_ctx, n_threads=n_threads, verbose=verbose)
