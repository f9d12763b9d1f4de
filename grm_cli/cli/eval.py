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
from grm_cli.cli.console import _report_problems, _report_truncated, progress_bar, say
from grm_cli.cli.options import ErrorsOpt, OnLongOpt, ScoreModeOpt, SeedOpt, SkipOpt, TemplateOpt, _check_sampling, engine_flags, load_engine
from grm_cli.cli.score import AdaptiveRiskOpt, BudgetOpt, _adaptive, _check_score_mode, _meta_file, _meta_rm, _probe, _report_adaptive, _report_principles, _score_loop
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import InputError


@app.command("eval")
@engine_flags("lora", "memory", "batching", "remote")
def eval_(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="Labelled JSONL records to score, results from `grm score --output` (nothing is generated), `grm eval --json` summaries, or a benchmark's files as published (a file, a folder, or hf://datasets/OWNER/NAME[@REV]/PATH). Several files are shown side by side."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Read FILE as this benchmark's published files and report its own metric: rewardbench, rewardbench2, rm-bench, judgebench, rmb, ppe. Detected from the file (or from stored results) when unambiguous."),
    k: int = typer.Option(1, "--samples", "-k", help="Samples per record when scoring records; the curve covers voting@1, 2, 4, ... k."),
    template: str = TemplateOpt,
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Default: 0 for k=1, 0.5 for k>1 (the paper's)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score only the first N records of each data file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the scored results (JSONL) so `grm eval` can recompute from them later."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (RewardBench-style: per-subset accuracies at the top level)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the voting@k curve to an image (needs matplotlib: grm-cli[plot])."),
    skip_invalid: bool = SkipOpt,
    errors_file: Optional[Path] = ErrorsOpt,
    on_long: str = OnLongOpt,
    draws: int = typer.Option(200, "--draws", help="Random k-subsets per point of the scaling curve."),
    score_mode: str = ScoreModeOpt,
    meta_rm: Optional[Path] = typer.Option(None, "--meta-rm", help="Score with a meta RM (a head file from `grm train metarm`, or a released scalar meta RM folder / hf://owner/repo): every sample is rated, and the report adds meta-RM-guided voting@k and the k_meta sweep."),
    k_meta: Optional[int] = typer.Option(None, "--k-meta", help="Samples kept by the meta RM for the stored verdicts (default k/2)."),
    adaptive: Optional[str] = typer.Option(None, "--adaptive", help="Adaptive voting (exact or stat): when scoring, draw the k samples in rounds and stop each record once its vote is settled; on stored results, replay the rule on the stored samples and report, for each k of the curve, accuracy, agreement with the full vote and samples used (nothing is generated)."),
    adaptive_risk: float = AdaptiveRiskOpt,
    budget: Optional[int] = BudgetOpt,
    principles: Optional[str] = typer.Option(None, "--principles", help="Compare principles modes on the same records and seeds (paper Table 1): a comma-separated list of none, self, filtered (principles kept by the label filter) and principles files, e.g. none,self,filtered."),
    filter_samples: int = typer.Option(4, "--filter-samples", help="Runs per record for the filtered mode (the paper's 4)."),
    filter_split: Optional[float] = typer.Option(None, "--filter-split", help="Held-out filtered mode: filter on this share of each query's labelled records and evaluate every mode on the rest (queries seen once are left out). Without it, filtered principles are judged on the records they were filtered on: the paper's oracle setting, flagged as such."),
    seed: int = SeedOpt,
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Accuracy of a judge on labelled data (the labelled best must score highest), diagnostics, and the
    voting@k scaling curve.

    Examples:

      grm eval examples/llmbar.jsonl -k 4 --output runs/smollm2.jsonl

      grm eval runs/smollm2.jsonl --plot curve.png

      grm eval runs/a.jsonl --json > a.json && grm eval a.json b.json

      grm eval examples/hhh_alignment.jsonl --principles none,self,filtered --filter-split 0.5 -k 4

      grm eval total_dataset.json --benchmark rm-bench -k 4 -o runs/rmbench.jsonl

      grm eval runs/k16.jsonl --adaptive stat --adaptive-risk 0.01
    """
    from grm_cli.cli.plot import check_plot_path, plot_curves
    from grm_cli.cli.render import eval_tables
    from grm_cli.core.prompt import load_template
    from grm_cli.evaluation.metrics import evaluate, result_from_json
    from grm_cli.scoring.prepare import prepare_records
    from grm_cli.scoring.settings import ScoreSettings

    if plot:
        check_plot_path(plot)  # fail before any scoring, not after

    _check_sampling(k, temperature, max_tokens)
    if draws < 1:
        raise InputError(f"--draws {draws}: expected a positive number")
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: expected a positive number")
    if on_long not in ("error", "truncate"):
        raise InputError(f"--on-long {on_long!r}: expected error or truncate")
    problems: list | None = [] if skip_invalid else None
    inputs = [_read_input(f, benchmark, problems) for f in files]
    to_score = [i for i in inputs if i.kind == "records"]
    if output and len(to_score) != 1:
        raise InputError(f"--output saves the results of one data file; {len(to_score)} of the files given are data to score")
    summaries = []
    engine = None
    tmpl = load_template(template) if to_score else None
    saved_meta, k_meta = _meta_file(meta_rm, k_meta, k, tmpl or load_template(template), eng.backend) if to_score else (None, None)
    if meta_rm is not None and not to_score:
        raise InputError("--meta-rm rates samples while scoring: give labelled records to score (stored results keep the ratings they were scored with)")
    if to_score:
        _check_score_mode(score_mode, tmpl, eng.backend)
    adaptive, adaptive_risk, budget = _adaptive(adaptive, adaptive_risk, budget, k if to_score else 2)
    if budget is not None and not to_score:
        raise InputError("--budget limits the samples drawn while scoring: give labelled records to score")
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, k_meta=k_meta, score_mode=score_mode if to_score else "sampled",
                             meta_rm=f"{saved_meta.model_fingerprint[:12]}:{meta_rm.name}" if saved_meta else None,
                             adaptive=adaptive if to_score else None, adaptive_risk=adaptive_risk, budget=budget)
    if saved_meta and principles is not None:
        raise InputError("--meta-rm and --principles: compare principles modes first, then train and use a meta RM per mode")
    scorer = probe = None
    eng.check()
    if filter_split is not None and not 0.0 < filter_split < 1.0:
        raise InputError(f"--filter-split {filter_split}: expected a fraction between 0 and 1 (the share of each query's records used to filter)")
    if principles is not None:
        if any(i.benchmark for i in inputs):
            raise InputError("--principles compares modes on generic labelled records, not on a benchmark's files")
        if len(inputs) != 1 or not to_score:
            raise InputError("--principles compares modes on one data file of labelled records (not stored results)")
        records = to_score[0].records[:limit] if limit else to_score[0].records
        engine = load_engine(eng, quiet=as_json)
        errors_path = errors_file or (Path(f"{output}.errors.jsonl") if output else None)
        from grm_cli.principles.compare import compare_modes, parse_modes  # numpy: only when a comparison runs

        summaries = compare_modes(
            records, to_score[0].source, parse_modes(principles), engine, tmpl, settings, chunk=eng.chunk, probe=_probe(settings, engine, tmpl, eng),
            output=output, force=force, filter_samples=filter_samples, filter_split=filter_split, on_long=on_long, problems=problems,
            report_problems=lambda p: _report_problems(p, errors_path), on_scored=lambda name, results: _report_principles(results), draws=draws,
            track=progress_bar, notify=say,
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
        else:
            records = _first_rows(inp.records, limit) if limit else inp.records
            if problems is None:
                for rec in records:
                    tmpl.check_count(rec)
            if engine is None:
                engine = load_engine(eng, quiet=as_json)
                scorer = _meta_rm(saved_meta, engine, tmpl, eng) if saved_meta else None
                probe = _probe(settings, engine, tmpl, eng)
            records = prepare_records(records, engine, tmpl, settings, on_long=on_long, errors=problems)
            _report_problems(problems, errors_file or (Path(f"{output}.errors.jsonl") if output else None))
            _report_truncated(records)
            # JudgeBench judges each order as given: its two records are the two orders, so no shuffling
            run_settings = replace(settings, shuffle=False) if inp.benchmark == "judgebench" else settings
            scored, saved = _score_loop(records, engine, tmpl, run_settings, None, output, force, print_json=False, print_tables=False, chunk=eng.chunk(run_settings.samples_per_call), meta_rm=scorer, probe=probe)
            _report_adaptive(scored, k)
            lines = [saved[r.id] for r in records] if output else [r.to_json() for r in scored]
            stored = [result_from_json(line, str(output or inp.source)) for line in lines]
        summary = evaluate(stored, seed=seed, draws=draws, name=Path(inp.source.rstrip("/")).stem, allow_unlabelled=inp.benchmark is not None)
        if adaptive is not None:
            summary.adaptive = _adaptive_replay(stored, adaptive, adaptive_risk, tmpl or load_template(template), seed)
        if inp.benchmark is not None:
            from grm_cli.evaluation import benchmarks

            summary.benchmark = benchmarks.evaluate(inp.benchmark, stored, seed, inp.notes)
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


def _adaptive_replay(stored, rule: str, risk: float, tmpl, seed: int) -> dict:
    """The adaptive rule replayed on stored samples, with the score range of the template they were scored
    with (the stored run's, when it names one grm can load; else --template's)."""
    from grm_cli.core.adaptive import Policy
    from grm_cli.core.prompt import load_template
    from grm_cli.evaluation.adaptive import adaptive_curve

    names = {r.template for r in stored if r.template}
    if len(names) == 1 and next(iter(names)) != tmpl.name:
        try:
            tmpl = load_template(next(iter(names)))
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
