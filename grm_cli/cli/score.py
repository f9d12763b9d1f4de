"""`grm score` and `grm principles` (with the label filter): records in, judged and voted results out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from grm_cli.cli.app import app
from grm_cli.cli.console import ConsoleReporter, print_line, progress_bar, say
from grm_cli.cli.options import SeedOpt, TemplateOpt, engine_flags, load_engine, score_flags
from grm_cli.cli.runs import engine_for, engine_parts, open_meta, report_adaptive, report_principles
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import ExitCode, InputError
from grm_cli.scoring.options import ScoreOptions, check_sampling
from grm_cli.scoring.runner import run_resumable


def _principles_mode(spec: Optional[str], tmpl) -> tuple[str, object, Optional[str]]:
    """--principles: "self" or "none" (keywords), or a file of given principles -> (mode, lookup, file).
    Principles belong to the deepseek-grm protocol: another protocol refuses the flag."""
    from grm_cli.io.principles_file import read_principles
    from grm_cli.scoring.principles import principles_lookup

    if spec is None or spec == "self":
        return "self", None, None
    if not hasattr(tmpl, "user_text"):
        raise InputError(f'--principles: protocol "{tmpl.name}" has no principles step (it belongs to the deepseek-grm protocol)')
    if spec != "none" and spec != "-" and not Path(spec).is_file():
        raise InputError(f"--principles {spec!r}: expected self, none, or a principles file (from `grm principles --output` or `--filter`)")
    if spec == "none":
        tmpl.user_text("none")  # a template without a principles-free variant fails now, not mid-run
        return "none", None, None
    from grm_cli.scoring.principles import principles_fingerprint

    entries = read_principles(spec)
    return "self", principles_lookup(entries, spec), f"{spec}#{principles_fingerprint(entries)}"


@app.command()
@engine_flags("lora", "memory", "batching", "remote")
@score_flags("sampling", "judge", "voting", "input")
def score(
    file: str = typer.Argument(..., metavar="FILE", help="JSONL records ('-' for stdin): prompt+responses, prompt+chosen+rejected, or messages; optional rubric, reference."),
    principles: Optional[str] = typer.Option(None, "--principles", help="Principles mode (deepseek-grm protocol): self (the model writes its own, default), none (the paper's ablation: analysis and scores only), or a FILE of given principles (JSONL from `grm principles --output` or `--filter`, or a text file for every record)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write one JSONL line per record (input, every sample, totals, best). An existing file is resumed: records already in it are skipped."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSONL results to stdout (logs go to stderr)."),
    opts: ScoreOptions = ScoreOptions(),
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Score every response of every record: principles, critique, scores 1..10, voted over k samples; or,
    with --protocol, in the words of the judge you run (Prometheus, Flow-Judge, Selene, Skywork, MT-Bench, Auto-J).

    Examples:

      grm score examples/llmbar.jsonl

      grm score data.jsonl -k 8 --output results.jsonl

      cat pairs.jsonl | grm score - --json | jq '.best'

      grm score pairs.jsonl --model prometheus-7b-v2 --rubric rubric.yaml -k 2

      grm score data.jsonl --protocol mt-bench-pairwise -k 2

      grm score data.jsonl --principles principles.jsonl

      grm score data.jsonl --principles none

      grm score data.jsonl -k 8 --meta-rm metarm.json --k-meta 4

      grm score data.jsonl -k 8 --meta-rm hf://BBQGOD/DeepSeek-GRM-27B-MetaRM --k-meta 4

      grm score data.jsonl -k 16 --adaptive exact -o results.jsonl

      grm score data.jsonl -k 16 --adaptive stat --adaptive-risk 0.01 --budget 4000
    """
    from grm_cli.cli.render import summary_line
    from grm_cli.io.jsonl import read_records
    from grm_cli.io.results import refuse_input_as_output
    from grm_cli.scoring.job import ScoreJob

    refuse_input_as_output(output, [file])
    opts.check(eng.backend)
    layout = opts.judge(eng.model)
    eng = engine_for(eng, layout)
    mode, lookup, principles_file = _principles_mode(principles, layout)
    saved_meta, meta_id = open_meta(opts, layout, eng.backend)
    settings = opts.settings(principles=mode, principles_from=principles_file, meta_rm_id=meta_id)
    job = ScoreJob(layout, settings, lookup, on_long=opts.on_long, skip_invalid=opts.skip_invalid, output=output, force=force, errors_file=opts.errors)
    reporter = ConsoleReporter(print_json=as_json, print_tables=not as_json)
    read_problems: list | None = [] if opts.skip_invalid else None
    records = job.check(opts.with_inputs(read_records(file, errors=read_problems)), reporter, read_problems or ())
    engine = load_engine(eng, quiet=as_json)
    rater, probe = engine_parts(settings, engine, layout, saved_meta, eng)
    report = job.run(records, engine, reporter, chunk=eng.chunk(settings.samples_per_call), meta_rm=rater, probe=probe)
    report_principles(report.results)
    report_adaptive(report.results, opts.k)
    say(f"{summary_line(report.results)}{f'; results in {output}' if output else ''}", "dim")
    if any(r.verdict.totals is None for r in report.results):
        raise typer.Exit(ExitCode.UNPARSED)


@app.command()
@engine_flags("lora", "memory", "batching", "remote")
def principles(
    file: str = typer.Argument(..., metavar="FILE", help="A plain-text prompt, '-' for stdin, or a JSONL of records (responses are shown to the model when present)."),
    template: str = TemplateOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the principles as JSONL (id, prompt, principles, criteria) for `grm score --principles`."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSONL to stdout (logs go to stderr)."),
    filter_: bool = typer.Option(False, "--filter", help="On labelled records: sample --filter-samples full judgments per record and keep the principles of the runs whose scores single out the labelled best (paper §2.2)."),
    filter_samples: int = typer.Option(4, "--filter-samples", help="Runs per record for --filter (the paper's 4)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature. Default: 0 (greedy); 0.5 with --filter."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget: 256 for the principles alone; 512 for a whole judgment with --filter."),
    seed: int = SeedOpt,
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Print the principles (query-specific criteria with weights) the model writes for each query.

    Examples:

      grm principles prompt.txt

      echo "Write a haiku about rain." | grm principles -

      grm principles data.jsonl --output principles.jsonl && grm score data.jsonl --principles principles.jsonl

      grm principles labelled.jsonl --filter -o filtered.jsonl && grm score other.jsonl --principles filtered.jsonl
    """
    from grm_cli.cli.render import principles_panel
    from grm_cli.core.prompt import load_template
    from grm_cli.engine.base import ContextOverflow
    from grm_cli.io.jsonl import read_prompts
    from grm_cli.scoring.principles import generate_principles

    max_tokens = max_tokens if max_tokens is not None else (512 if filter_ else 256)
    check_sampling(None, temperature, max_tokens)
    tmpl = load_template(template)
    eng.check()
    if filter_:
        _filter_principles(file, tmpl, output, force, as_json, filter_samples, temperature, max_tokens, seed, eng=eng)
        return
    temperature = temperature or 0.0
    records = read_prompts(file)
    engine = load_engine(eng, quiet=as_json)
    out = Console()
    run = {"model": engine.name, "template": tmpl.name, "seed": seed, "temperature": temperature, "max_tokens": max_tokens}
    missing = 0

    def produce(todo):
        nonlocal missing
        for rec in todo:
            try:
                (result,) = generate_principles([rec], engine, tmpl, seed=seed, temperature=temperature, max_tokens=max_tokens)
            except ContextOverflow as e:
                raise InputError(f"{e}: raise --ctx or lower --max-tokens", rec.source, rec.line) from None
            missing += result.judgment.principles is None
            yield rec.id, {**result.to_json(), "run": run}, result

    def show(line, result):
        if as_json:
            print_line(line)
        else:
            out.print(principles_panel(result))

    run_resumable(records, produce, output=output, run=run, force=force, what="queries", track=progress_bar("principles"), notify=say, on_line=show)
    if missing:
        say(f"{missing} of {len(records)} queries got no principles from the model", "yellow")
        raise typer.Exit(ExitCode.UNPARSED)


def _filter_principles(file, tmpl, output, force, as_json, runs, temperature, max_tokens, seed, *, eng: EngineOptions) -> list:
    """`grm principles --filter`: one JSONL line per record with the kept principles and their provenance."""
    from grm_cli.core.rules import label_of
    from grm_cli.io.jsonl import looks_like_jsonl, parse_jsonl, read_text_input
    from grm_cli.principles.filtering import filter_settings

    settings = filter_settings(runs, temperature=temperature, seed=seed, max_tokens=max_tokens)
    name, text = read_text_input(file)  # read once: FILE may be stdin
    if not looks_like_jsonl(text):
        raise InputError("--filter needs labelled records as JSONL (prompt + responses + preferred, or chosen/rejected), not a plain-text prompt", name)
    records = parse_jsonl(text, name)
    for rec in records:
        tmpl.check_count(rec)
        label_of(rec, "filtering principles")
    engine = load_engine(eng, quiet=as_json)
    data = Path(file).name if file != "-" else "<stdin>"
    return _run_filter(records, engine, tmpl, settings, data, output, force, as_json=as_json, panels=not as_json, chunk=eng.chunk(runs))


def _run_filter(records, engine, tmpl, settings, data: str, output, force, *, as_json: bool, panels: bool, chunk: int) -> list[dict]:
    """Filter principles by the label; every line goes to --output (resumable), stdout or a panel.
    Returns the lines of every record (those resumed from --output included)."""
    from grm_cli.cli.render import filtered_panel
    from grm_cli.principles.filtering import filter_resumable

    out = Console()

    def show(line, f):
        if as_json:
            print_line(line)
        elif panels:
            out.print(filtered_panel(f))

    return filter_resumable(records, engine, tmpl, settings, data, output=output, force=force, chunk=chunk,
                            track=progress_bar(f"filtering principles (m={settings.k})"), notify=say, on_result=show)
