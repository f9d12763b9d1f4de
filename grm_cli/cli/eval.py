"""`grm eval`: a judge's accuracy on labelled data, from a run or from stored results; the principles comparison."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from grm_cli.cli.app import app
from grm_cli.cli.console import ConsoleReporter, say
from grm_cli.cli.options import engine_flags, load_engine, score_flags
from grm_cli.cli.runs import engine_for, engine_parts, open_meta, report_adaptive, report_principles
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import InputError
from grm_cli.scoring.options import ScoreOptions


@app.command("eval")
@engine_flags("lora", "memory", "batching", "remote")
@score_flags("sampling", "judge", "voting", "input")
def eval_(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="Labelled JSONL records to score, results from `grm score --output` (nothing is generated), `grm eval --json` summaries, or a benchmark's files as published (a file, a folder, or hf://datasets/OWNER/NAME[@REV]/PATH). Several files are shown side by side."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Read FILE as this benchmark's published files and report its own metric: rewardbench, rewardbench2, rm-bench, judgebench, rmb, ppe. Detected from the file (or from stored results) when unambiguous."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score only the first N records of each data file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the scored results (JSONL) so `grm eval` can recompute from them later."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (RewardBench-style: per-subset accuracies at the top level)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the voting@k curve to an image (needs matplotlib: grm-cli[plot])."),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Also write the HTML report of the runs (as `grm view` writes it: this summary, every record and sample). An existing report is replaced only with --force."),
    draws: int = typer.Option(200, "--draws", help="Random k-subsets per point of the scaling curve."),
    principles: Optional[str] = typer.Option(None, "--principles", help="Compare principles modes on the same records and seeds (paper Table 1): a comma-separated list of none, self, filtered (principles kept by the label filter) and principles files, e.g. none,self,filtered."),
    filter_samples: int = typer.Option(4, "--filter-samples", help="Runs per record for the filtered mode (the paper's 4)."),
    filter_split: Optional[float] = typer.Option(None, "--filter-split", help="Held-out filtered mode: filter on this share of each query's labelled records and evaluate every mode on the rest (queries seen once are left out). Without it, filtered principles are judged on the records they were filtered on: the paper's oracle setting, flagged as such."),
    opts: ScoreOptions = ScoreOptions(),
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Accuracy of a judge on labelled data (the labelled best must score highest), diagnostics, and the
    voting@k scaling curve. With stored results, --adaptive replays the rule on the stored samples.

    Examples:

      grm eval examples/llmbar.jsonl -k 4 --output runs/smollm2.jsonl

      grm eval runs/smollm2.jsonl --plot curve.png --report runs/smollm2.html

      grm eval runs/a.jsonl --json > a.json && grm eval a.json b.json

      grm eval pairs.jsonl --protocol mt-bench-pairwise -k 2

      grm eval examples/hhh_alignment.jsonl --principles none,self,filtered --filter-split 0.5 -k 4

      grm eval total_dataset.json --benchmark rm-bench -k 4 -o runs/rmbench.jsonl

      grm eval runs/k16.jsonl --adaptive stat --adaptive-risk 0.01
    """
    from grm_cli.cli.plot import check_plot_path, plot_curves
    from grm_cli.cli.render import eval_tables
    from grm_cli.evaluation.metrics import evaluate
    from grm_cli.io.results import refuse_input_as_output
    from grm_cli.scoring.job import ScoreJob
    from grm_cli.scoring.results import result_from_json

    refuse_input_as_output(output, files)
    if report_path:
        from grm_cli.report import check_report_path

        check_report_path(report_path, [*files, output], force=force, flag="--report")  # before any scoring, not after
    if plot:
        check_plot_path(plot)  # fail before any scoring, not after
    if draws < 1:
        raise InputError(f"--draws {draws}: expected a positive number")
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: expected a positive number")
    problems: list | None = [] if opts.skip_invalid else None
    inputs = [_read_input(f, benchmark, problems) for f in files]
    to_score = [i for i in inputs if i.kind == "records"]
    if output and len(to_score) != 1:
        raise InputError(f"--output saves the results of one data file; {len(to_score)} of the files given are data to score")
    if not to_score:
        if opts.meta_rm is not None:
            raise InputError("--meta-rm rates samples while scoring: give labelled records to score (stored results keep the ratings they were scored with)")
        if opts.budget is not None:
            raise InputError("--budget limits the samples drawn while scoring: give labelled records to score")
        replace(opts, k=max(opts.k, 2), score_mode="sampled").check()  # an adaptive replay reads stored samples
    else:
        opts.check(eng.backend)
    summaries = []
    evidence: dict = {}  # summary index -> the results it came from (a file, or the lines just scored), for --report
    engine = rater = probe = None
    layout = opts.judge(eng.model) if to_score else None
    eng = engine_for(eng, layout)
    saved_meta, meta_id = open_meta(opts, layout, eng.backend) if to_score else (None, None)
    settings = opts.settings(meta_rm_id=meta_id)
    if not to_score:
        settings = replace(settings, score_mode="sampled", adaptive=None)
    if saved_meta and principles is not None:
        raise InputError("--meta-rm and --principles: compare principles modes first, then train and use a meta RM per mode")
    eng.check()
    reporter = ConsoleReporter()
    if filter_split is not None and not 0.0 < filter_split < 1.0:
        raise InputError(f"--filter-split {filter_split}: expected a fraction between 0 and 1 (the share of each query's records used to filter)")
    if principles is not None:
        if any(i.benchmark for i in inputs):
            raise InputError("--principles compares modes on generic labelled records, not on a benchmark's files")
        if len(inputs) != 1 or not to_score:
            raise InputError("--principles compares modes on one data file of labelled records (not stored results)")
        if not hasattr(layout, "user_text"):
            raise InputError(f'--principles compares DeepSeek-GRM\'s principles modes; protocol "{layout.name}" has no principles step')
        records = to_score[0].records[:limit] if limit else to_score[0].records
        engine = load_engine(eng, quiet=as_json)
        from grm_cli.principles.compare import compare_modes, parse_modes  # numpy: only when a comparison runs

        summaries = compare_modes(
            records, to_score[0].source, parse_modes(principles), engine, layout, settings, chunk=eng.chunk, probe=engine_parts(settings, engine, layout, None, eng)[1],
            output=output, force=force, filter_samples=filter_samples, filter_split=filter_split, on_long=opts.on_long,
            skip_invalid=opts.skip_invalid, errors_file=opts.errors, read_problems=problems or (), draws=draws, reporter=reporter,
            on_scored=lambda name, results: report_principles(results),
        )
        inputs = []
    elif filter_split is not None:
        raise InputError("--filter-split applies to --principles ...,filtered")
    for inp in inputs:
        if inp.kind == "summary":
            summaries.append(inp.summary)
            continue
        if inp.kind == "results":
            stored = inp.results
            evidence[len(summaries)] = inp.source
        else:
            # JudgeBench judges each order as given: its two records are the two orders, so no shuffling
            run_settings = replace(settings, shuffle=False) if inp.benchmark == "judgebench" else settings
            job = ScoreJob(layout, run_settings, on_long=opts.on_long, skip_invalid=opts.skip_invalid, output=output, force=force, errors_file=opts.errors)
            records = _first_rows(inp.records, limit) if limit else inp.records
            records = job.check(opts.with_inputs(records), reporter, problems or ())
            if problems:
                problems.clear()
            if engine is None:
                engine = load_engine(eng, quiet=as_json)
                rater, probe = engine_parts(settings, engine, layout, saved_meta, eng)
            report = job.run(records, engine, reporter, chunk=eng.chunk(run_settings.samples_per_call), meta_rm=rater, probe=probe)
            report_adaptive(report.results, opts.k)
            stored = [result_from_json(line, str(output or inp.source)) for line in report.lines()]
            evidence[len(summaries)] = report.lines()
        summary = evaluate(stored, seed=opts.seed, draws=draws, name=Path(inp.source.rstrip("/")).stem, allow_unlabelled=inp.benchmark is not None)
        if opts.adaptive is not None:
            summary.adaptive = _adaptive_replay(stored, opts.adaptive, opts.adaptive_risk, layout or opts.judge(eng.model), opts.seed)
        if inp.benchmark is not None:
            from grm_cli.evaluation import benchmarks

            summary.benchmark = benchmarks.evaluate(inp.benchmark, stored, opts.seed, inp.notes)
        summaries.append(summary)
    if as_json:
        payload = [s.to_json() for s in summaries]
        sys.stdout.write(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2) + "\n")
    else:
        out = Console()
        for t in eval_tables(summaries) + _benchmark_tables(summaries):
            out.print(t)
            out.print()
    if plot:
        say(f"curve written to {plot_curves(summaries, plot)}", "dim")
    if report_path:
        from grm_cli.report import eval_run, write_report

        written = write_report([eval_run(s, evidence.get(i)) for i, s in enumerate(summaries)], report_path, seed=opts.seed)
        say(f"report written to {written.path}", "dim")


def _adaptive_replay(stored, rule: str, risk: float, tmpl, seed: int) -> dict:
    """The adaptive rule replayed on stored samples, with the score range of the template they were scored
    with (the stored run's, when it names one grm can load; else --template's)."""
    from grm_cli.core.adaptive import Policy
    from grm_cli.core.prompt import load_template
    from grm_cli.core.protocols import get_protocol, protocol_names
    from grm_cli.evaluation.adaptive import adaptive_curve

    names = {r.template for r in stored if r.template}
    if len(names) == 1 and next(iter(names)) != tmpl.name:
        try:
            name = next(iter(names))
            tmpl = get_protocol(name) if name in protocol_names() else load_template(name)
        except InputError:
            say(f'the results were scored with template "{next(iter(names))}", which is not here: using {tmpl.name}\'s score range', "yellow")
    curve = adaptive_curve(stored, Policy(rule, risk), tmpl, seed=seed)
    return {"rule": rule, "risk": risk, "curve": [p.to_json() for p in curve]}


def _read_input(path: str, benchmark: str | None, problems: list | None):
    """What one FILE argument is: a benchmark's published files (named or detected), stored results
    (whose benchmark is the one named, or the one their stored input says), or generic records/summaries."""
    from grm_cli.evaluation import benchmarks as bm
    from grm_cli.evaluation.benchmarks.files import first_row
    from grm_cli.evaluation.metrics import EvalInput, is_results_line, read_eval_input

    if benchmark is not None:
        bm.module(benchmark)  # an unknown name fails before anything is read
    if path.startswith("hf://") or (path != "-" and Path(path).is_dir()):
        data = bm.load(bm.local_path(path), benchmark, problems)
        return EvalInput("records", path, records=data.records, benchmark=data.name, notes=data.notes)
    head = first_row(path) if path != "-" else None
    detected = None if path == "-" or is_results_line(head) else bm.detect(path)
    if benchmark is not None and detected is not None and detected != benchmark:
        raise InputError(f"is in {bm.module(detected).TITLE}'s layout, not {bm.module(benchmark).TITLE}'s: drop --benchmark or give --benchmark {detected}", path)
    name = benchmark or detected
    if name is not None and not is_results_line(head):
        data = bm.load(path, name, problems)
        return EvalInput("records", path, records=data.records, benchmark=data.name, notes=data.notes)
    inp = read_eval_input(path, problems)
    if inp.kind == "results":
        return replace(inp, benchmark=name or bm.results_benchmark(inp.results))
    if name is not None:
        raise InputError(f"--benchmark {name}: expected {bm.module(name).TITLE}'s files or results scored from them, got {inp.kind}", path)
    return inp


def _first_rows(records: list, limit: int) -> list:
    """--limit on a benchmark counts its rows: the parts of one item and JudgeBench's two orders stay together."""
    keep, seen = [], []
    for rec in records:
        key = (rec.source, rec.line)
        if key not in seen:
            if len(seen) == limit:
                break
            seen.append(key)
        keep.append(rec)
    return keep


def _flat(metrics: dict, prefix: str = "") -> list[tuple[str, float | None]]:
    out = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k} ")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _benchmark_tables(summaries: list) -> list:
    """Per benchmark: its own metrics by its own names, one column per run, and the paper's numbers."""
    from rich.table import Table

    from grm_cli.evaluation.metrics import fmt

    out = []
    for name in dict.fromkeys(s.benchmark["name"] for s in summaries if s.benchmark):
        runs = [s for s in summaries if s.benchmark and s.benchmark["name"] == name]
        b = runs[0].benchmark
        paper = (b.get("paper") or {}).get("metrics") or {}
        runs_paper = list(next(iter(paper.values()))) if paper else []
        title = f"{b['title']} (%, its own metric: {b['rule']})"
        if paper:
            title += f"; paper = {b['paper']['model']}, as published"
        t = Table(title=title, title_justify="left", title_style="bold", show_edge=False)
        t.add_column("")
        for s in runs:
            t.add_column(s.name or s.model, justify="right")
        for run in runs_paper:
            t.add_column(f"paper {run}", justify="right", style="dim")
        keys = list(dict.fromkeys(k for s in runs for k, _ in _flat(s.benchmark["metrics"])))
        for key in keys:
            cells = [fmt(dict(_flat(s.benchmark["metrics"])).get(key)) for s in runs]
            cells += [f"{paper[key][run]:.1f}" if key in paper else "" for run in runs_paper]
            t.add_row(key, *cells, style="bold" if key in paper else None)
        eq10 = list(dict.fromkeys(k for s in runs for k, _ in _flat(s.benchmark["details"].get("eq10") or {})))
        for key in eq10:  # where the benchmark's rule differs from the paper's, the paper's (Eq. 10: a tie is wrong) too
            t.add_row(f"{key} (Eq. 10)", *[fmt(dict(_flat(s.benchmark["details"].get("eq10") or {})).get(key)) for s in runs], *[""] * len(runs_paper), style="dim")
        out.append(t)
    return out
