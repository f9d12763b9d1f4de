"""The paper's Table 1 as a function: the same records, the same seeds, scored in each principles mode
(none, self, filtered by the label, or given files), each evaluated; the CLI's `grm eval --principles
a,b,c` is a skin over `compare_modes`.

Every mode sees exactly the same records: one that a mode cannot take (its prompt does not fit, say) is
left out of all. Filtered principles chosen with the labels of the records they are evaluated on are the
paper's §2.2 oracle setting and are flagged as such; `filter_split` holds queries out for a fair number.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record
from grm_cli.core.rules import label_of
from grm_cli.errors import InputError
from grm_cli.evaluation.metrics import EvalSummary, evaluate
from grm_cli.io.principles_file import principles_entry, read_principles
from grm_cli.principles.filtering import filter_resumable, filter_settings, split_for_filter
from grm_cli.scoring.job import QuietReporter, Reporter, ScoreJob
from grm_cli.scoring.prepare import fit_to_context
from grm_cli.scoring.principles import principles_fingerprint, principles_lookup
from grm_cli.scoring.results import result_from_json
from grm_cli.scoring.settings import ScoreSettings

KEYWORDS = ("none", "self", "filtered")
ORACLE_WARNING = ("ORACLE: the filtered principles were chosen with the labels of the very records they are evaluated on (the paper's §2.2 "
                  "setting); this is not a held-out result: add --filter-split for one")


def mode_name(mode: str) -> str:
    """none, self, filtered, or given-<file stem>: never the name of another mode or of the filter's file."""
    return mode if mode in KEYWORDS else f"given-{Path(mode).stem}"


def parse_modes(spec: str) -> list[str]:
    """A comma-separated list of none, self, filtered and principles files, checked."""
    modes = [m.strip() for m in spec.split(",") if m.strip()]
    if not modes:
        raise InputError(f"--principles {spec!r}: expected a comma-separated list of none, self, filtered or principles files")
    for m in modes:
        if m not in KEYWORDS and not Path(m).is_file():
            raise InputError(f"--principles: {m!r} is neither none, self, filtered nor a principles file")
    names = [mode_name(m) for m in modes]
    if len(set(names)) < len(names):
        raise InputError(f"--principles {spec!r}: two modes have the same name ({', '.join(names)}); each writes its own results")
    return modes


def compare_modes(
    records: Sequence[Record],
    source: str,
    modes: Sequence[str],
    engine,
    template: Template,
    settings: ScoreSettings,
    *,
    chunk: Callable[[int], int] = lambda k: 1,
    probe=None,
    output: Optional[Path] = None,
    force: bool = False,
    filter_samples: int = 4,
    filter_split: Optional[float] = None,
    on_long: str = "error",
    skip_invalid: bool = False,
    errors_file: Optional[Path] = None,
    read_problems: Sequence[InputError] = (),
    on_scored: Callable[[str, list], None] = lambda name, results: None,
    draws: int = 200,
    reporter: Reporter = QuietReporter(),
) -> list[EvalSummary]:
    """Score `records` in each mode and evaluate each (one `EvalSummary` per mode, in order). With `output`,
    each mode's results go to OUTPUT's stem + .MODE.jsonl (and the filter's to .principles.jsonl), resumable.
    `chunk(k)` gives the records per engine call for k samples. Each mode is one `ScoreJob`."""
    if "none" in modes:
        template.user_text("none")
    notify, track = reporter.note, reporter.progress

    def job_for(mode_settings: ScoreSettings, lookup=None, out: Optional[Path] = None) -> ScoreJob:
        return ScoreJob(template, mode_settings, lookup, on_long=on_long, skip_invalid=skip_invalid, output=out, force=force,
                        errors_file=errors_file or (Path(f"{output}.errors.jsonl") if output else None))

    # every mode ignores principles that records carry: the mode alone decides what the model is given
    base = job_for(settings)
    records = base.check([replace(r, principles=None) for r in records], reporter, read_problems)
    unfit: list = []
    records = fit_to_context(records, engine, template, settings, on_long=on_long, errors=unfit if skip_invalid else None)
    base.report_problems(unfit, reporter)
    eval_records = filter_records = records
    if filter_split is not None:
        if "filtered" not in modes:
            raise InputError("--filter-split applies to the filtered mode: add filtered to --principles")
        split = split_for_filter(records, filter_split, settings.seed)
        if not split.held_out:
            raise InputError("no query occurs in two or more labelled records, so no held-out split exists: filtered principles are query-specific (use the oracle setting without --filter-split, and read it as such)", source)
        filter_records, eval_records = list(split.filter_side), list(split.held_out)
        notify(f"held-out split: filtering on {len(filter_records)} records, evaluating every mode on {len(eval_records)} records of the same queries; {len(split.left_out)} records whose query occurs once are left out", "dim")

    def path_for(name: str) -> Optional[Path]:
        return output.with_name(f"{output.stem}.{name}.jsonl") if output else None

    lookups: dict = {}
    tags: dict = {}
    if "filtered" in modes:
        for rec in filter_records:
            label_of(rec, "filtering principles")
        fsettings = filter_settings(filter_samples, seed=settings.seed, max_tokens=settings.max_tokens)
        lines = filter_resumable(filter_records, engine, template, fsettings, Path(source).name, output=path_for("principles"), force=force,
                                 chunk=chunk(filter_samples), track=track(f"filtering principles (m={filter_samples})"), notify=notify)
        entries = [principles_entry(x) for x in lines]
        lookups["filtered"] = principles_lookup(entries, "filtered")
        tags["filtered"] = f"filtered#{principles_fingerprint(entries)}"  # another split or filter: another signature
    for mode in modes:
        if mode not in lookups and mode_name(mode) != mode:
            entries = read_principles(mode)
            lookups[mode] = principles_lookup(entries, mode)
            tags[mode] = f"{mode_name(mode)}#{principles_fingerprint(entries)}"
    ready_by_mode = {}
    for mode in modes:
        mode_settings = replace(settings, principles="none" if mode == "none" else "self", principles_from=tags.get(mode))
        job = job_for(mode_settings, lookups.get(mode), path_for(mode_name(mode)))
        job.what = mode_name(mode)
        problems: list = []
        ready_by_mode[mode] = (job, fit_to_context(job.check(eval_records, reporter), engine, template, mode_settings, lookups.get(mode),
                                                   on_long=on_long, errors=problems if skip_invalid else None))
        job.report_problems(problems, reporter)
    common = set.intersection(*({r.id for r in ready} for _, ready in ready_by_mode.values()))
    summaries = []
    for mode in modes:
        name = mode_name(mode)
        job, ready = ready_by_mode[mode]
        report = job.run([r for r in ready if r.id in common], engine, reporter, chunk=chunk(settings.k), probe=probe)
        on_scored(name, report.results)
        stored = [result_from_json(line, str(job.output or source)) for line in report.lines()]
        summaries.append(evaluate(stored, seed=settings.seed, draws=draws, name=name))
    if any(s.diagnostics.get("oracle_rate") for s in summaries):
        notify(ORACLE_WARNING, "bold yellow")
    return summaries
