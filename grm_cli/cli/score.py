"""`grm score` and `grm principles` (with the label filter): records in, judged and voted results out."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from grm_cli.cli.app import app
from grm_cli.cli.console import _report_problems, _report_speed, _report_truncated, print_line, progress_bar, say
from grm_cli.cli.options import ErrorsOpt, OnLongOpt, ScoreModeOpt, SeedOpt, SkipOpt, TemplateOpt, _check_sampling, engine_flags, load_engine
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import ExitCode, InputError
from grm_cli.scoring.runner import run_resumable, score_resumable


def _principles_mode(spec: Optional[str], tmpl) -> tuple[str, object, Optional[str]]:
    """--principles: "self" or "none" (keywords), or a file of given principles -> (mode, lookup, file)."""
    from grm_cli.io.principles_file import read_principles
    from grm_cli.scoring.principles import principles_lookup

    if spec is None or spec == "self":
        return "self", None, None
    if spec != "none" and spec != "-" and not Path(spec).is_file():
        raise InputError(f"--principles {spec!r}: expected self, none, or a principles file (from `grm principles --output` or `--filter`)")
    if spec == "none":
        tmpl.user_text("none")  # a template without a principles-free variant fails now, not mid-run
        return "none", None, None
    from grm_cli.scoring.principles import principles_fingerprint

    entries = read_principles(spec)
    return "self", principles_lookup(entries, spec), f"{spec}#{principles_fingerprint(entries)}"


def _report_principles(results) -> None:
    """Say when given principles fell back to the model's own, and when the setting is an oracle."""
    fallback = sum(1 for r in results if r.settings.principles == "self" and r.given_principles is None)
    oracle = sum(1 for r in results if r.oracle)
    if fallback and any(r.given_principles is not None for r in results):
        say(f"{fallback} record{'s' if fallback != 1 else ''} had no filtered principles (no run agreed with the label): scored with the model's own", "yellow")
    if oracle:
        say(f"oracle setting: {oracle} record{'s' if oracle != 1 else ''} scored with principles filtered on their own labels (paper §2.2); this is not a held-out result (see grm eval --filter-split)", "yellow")


def _meta_file(path: Optional[Path], k_meta: Optional[int], k: int, tmpl, backend: str = "llama"):
    """--meta-rm/--k-meta checked before any model loads -> (meta RM source or None, k_meta or None).
    The source is a head file of `grm train metarm` (over the GRM's own hidden states) or a released
    scalar meta RM: a model folder or hf://owner/repo (grm_cli.metarm.scalar)."""
    if path is None:
        if k_meta is not None:
            raise InputError("--k-meta needs --meta-rm (a meta RM file from `grm train metarm`, or a scalar meta RM's folder)")
        return None, None
    from grm_cli.metarm.model import MetaRMFile
    from grm_cli.metarm.scalar import is_scalar_spec, open_source

    scalar = is_scalar_spec(str(path))
    if backend != "llama" and not scalar:
        raise InputError("--meta-rm with a head file reads the model's hidden states in this process: it works with --backend llama, not with a remote server (a scalar meta RM folder works with any backend)")
    if k < 2:
        raise InputError(f"--meta-rm chooses among samples: give -k 2 or more (now -k {k})")
    k_meta = k_meta if k_meta is not None else max(1, k // 2)
    if not 1 <= k_meta <= k:
        raise InputError(f"--k-meta {k_meta}: expected 1 to k ({k})")
    saved = open_source(str(path)) if scalar else MetaRMFile.load(path)
    saved.check_template(tmpl)
    return saved, k_meta


def _meta_rm(saved, engine, tmpl, eng: EngineOptions):
    """The rater guided voting uses: a scalar meta RM as it is, or the head over the loaded model's
    hidden states (a head trained on another model is refused)."""
    from grm_cli.metarm.scalar import ScalarMetaRM, ScalarMetaRMSource

    if isinstance(saved, ScalarMetaRMSource):
        say(f"meta RM: {saved.spec} ({saved.architecture}) through transformers")
        rater = ScalarMetaRM(saved, tmpl)
        say(f"meta RM on {rater.device}")
        return rater
    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.side import base_engine
    from grm_cli.metarm.model import MetaRM

    base = base_engine(engine)
    saved.check(base.fingerprint, base.name, tmpl)
    return MetaRM(saved, HiddenStates(engine, n_ctx=eng.ctx + 512, n_threads=eng.threads, verbose=eng.verbose), tmpl)


AdaptiveOpt = typer.Option(None, "--adaptive", help="Adaptive voting: draw the k samples in rounds and stop a record once its vote is settled. exact: the lead is more than the remaining samples could overturn (the verdict is the full vote's); stat: the chance the remaining samples overturn it is below --adaptive-risk.")
AdaptiveRiskOpt = typer.Option(0.01, "--adaptive-risk", help="Error level of --adaptive stat: the verdict equals the full vote's with probability at least 1 - risk (samples independent, differences near normal).")
BudgetOpt = typer.Option(None, "--budget", help="With --adaptive: most samples for the whole run. Every record gets a first round; later rounds go to the closest votes first.")


def _adaptive(rule: Optional[str], risk: float, budget: Optional[int], k: int) -> tuple[Optional[str], float, Optional[int]]:
    """--adaptive/--adaptive-risk/--budget checked before any model loads."""
    from grm_cli.core.adaptive import RULES

    if rule is None:
        if budget is not None:
            raise InputError("--budget needs --adaptive exact or --adaptive stat (it hands out adaptive rounds)")
        return None, risk, None
    if rule not in RULES:
        raise InputError(f"--adaptive {rule!r}: expected {' or '.join(RULES)}")
    if k < 2:
        raise InputError(f"--adaptive stops sampling early: give -k 2 or more (now -k {k})")
    if not 0.0 < risk < 0.5:
        raise InputError(f"--adaptive-risk {risk}: expected a probability between 0 and 0.5 (e.g. 0.01)")
    if budget is not None and budget < 1:
        raise InputError(f"--budget {budget}: expected a number of samples, 1 or more")
    return rule, risk, budget


def _report_adaptive(results, k: int) -> None:
    """How much adaptive voting saved, and why records stopped."""
    adaptive = [r for r in results if r.settings.adaptive]
    if not adaptive:
        return
    used = sum(len(r.samples) for r in adaptive)
    full = k * len(adaptive)
    why: dict = {}
    for r in adaptive:
        if r.stopped_by:
            why[r.stopped_by] = why.get(r.stopped_by, 0) + 1
    stops = ", ".join(f"{n} by {rule}" for rule, n in sorted(why.items())) or "none early"
    say(f"adaptive voting: {used} of {full} samples ({1 - used / full:.0%} saved); records stopped: {stops}", "dim")


def _check_score_mode(score_mode: str, tmpl, backend: str = "llama") -> None:
    if score_mode not in ("sampled", "expected"):
        raise InputError(f"--score-mode {score_mode!r}: expected sampled or expected")
    if score_mode == "expected" and tmpl.kind == "judge":
        raise InputError(f'--score-mode expected: template "{tmpl.name}" names the best response instead of scoring each one')
    if score_mode == "expected" and backend != "llama":
        raise InputError("--score-mode expected reads the model's probabilities in this process: use --backend llama")


def _probe(settings, engine, tmpl, eng: EngineOptions):
    """The expected-score reader, when --score-mode expected asks for one."""
    if settings.score_mode != "expected":
        return None
    from grm_cli.engine.probe import ScoreProbe

    return ScoreProbe(engine, tmpl.score_min, tmpl.score_max, n_ctx=eng.ctx + 64, n_threads=eng.threads, verbose=eng.verbose)


def _score_loop(records, engine, tmpl, settings, lookup, output, force, *, print_json: bool, print_tables: bool, chunk: int = 1, meta_rm=None, probe=None) -> tuple[list, dict]:
    """Score records one by one: each finished result goes to --output (fsynced), stdout, and the table.
    With an existing --output, the records it already holds are skipped (resume).
    Returns (results scored now, every stored line of --output by id)."""
    from grm_cli.cli.render import score_table

    out = Console()
    before = dataclasses.replace(engine.stats) if hasattr(engine, "stats") else None
    started = time.perf_counter()

    def show(line, result):
        if print_json:
            print_line(line)
        if print_tables:
            out.print(score_table(result))

    results, stored = score_resumable(records, engine, tmpl, settings, lookup, output=output, force=force, chunk=chunk, meta_rm=meta_rm, probe=probe,
                                      track=progress_bar(f"scoring (k={settings.k})"), notify=say, on_result=show)
    hits = getattr(engine, "hits", 0)
    if hits:
        say(f"reused {hits} cached samples, generated {engine.misses}", "dim")
    _report_speed(engine, before, time.perf_counter() - started, len(results), output)
    return results, stored


@app.command()
@engine_flags("lora", "memory", "batching", "remote")
def score(
    file: str = typer.Argument(..., metavar="FILE", help="JSONL records ('-' for stdin): prompt+responses, prompt+chosen+rejected, or messages."),
    k: int = typer.Option(1, "--samples", "-k", help="Samples per record; their scores are summed (voting@k). Responses are shuffled per sample."),
    template: str = TemplateOpt,
    principles: Optional[str] = typer.Option(None, "--principles", help="Principles mode: self (the model writes its own, default), none (the paper's ablation: analysis and scores only), or a FILE of given principles (JSONL from `grm principles --output` or `--filter`, or a text file for every record)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature. Default: 0 (greedy) for k=1, 0.5 for k>1 (the paper's)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle the response order before each sample (seeded)."),
    force_scores: bool = typer.Option(True, "--force-scores/--free", help="When a sample ends without a valid score line, force the line's opening (the template's scores label and the box) and let a grammar admit only valid scores. --free records such samples as parse errors."),
    score_mode: str = ScoreModeOpt,
    meta_rm: Optional[Path] = typer.Option(None, "--meta-rm", help="Meta-RM-guided voting: a meta RM rates every sample and only the --k-meta best-rated are summed. A head file from `grm train metarm`, or a released scalar meta RM (a *ForSequenceClassification folder or hf://owner/repo, run through transformers)."),
    k_meta: Optional[int] = typer.Option(None, "--k-meta", help="Samples kept by the meta RM (default k/2, the paper's)."),
    adaptive: Optional[str] = AdaptiveOpt,
    adaptive_risk: float = AdaptiveRiskOpt,
    budget: Optional[int] = BudgetOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write one JSONL line per record (input, every sample, totals, best). An existing file is resumed: records already in it are skipped."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSONL results to stdout (logs go to stderr)."),
    skip_invalid: bool = SkipOpt,
    errors_file: Optional[Path] = ErrorsOpt,
    on_long: str = OnLongOpt,
    seed: int = SeedOpt,
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Score every response of every record: principles, critique, scores 1..10, voted over k samples.

    Examples:

      grm score examples/llmbar.jsonl

      grm score data.jsonl -k 8 --output results.jsonl

      cat pairs.jsonl | grm score - --json | jq '.best'

      grm score data.jsonl --principles principles.jsonl

      grm score data.jsonl --principles none

      grm score data.jsonl -k 8 --meta-rm metarm.json --k-meta 4

      grm score data.jsonl -k 8 --meta-rm hf://BBQGOD/DeepSeek-GRM-27B-MetaRM --k-meta 4

      grm score data.jsonl -k 16 --adaptive exact -o results.jsonl

      grm score data.jsonl -k 16 --adaptive stat --adaptive-risk 0.01 --budget 4000
    """
    from grm_cli.cli.render import summary_line
    from grm_cli.core.prompt import load_template
    from grm_cli.io.jsonl import read_records
    from grm_cli.scoring.prepare import prepare_records
    from grm_cli.scoring.settings import ScoreSettings

    _check_sampling(k, temperature, max_tokens)
    if on_long not in ("error", "truncate"):
        raise InputError(f"--on-long {on_long!r}: expected error or truncate")
    tmpl = load_template(template)
    problems: list | None = [] if skip_invalid else None
    records = read_records(file, errors=problems)
    if problems is None:
        for rec in records:
            tmpl.check_count(rec)
    mode, lookup, principles_file = _principles_mode(principles, tmpl)
    saved_meta, k_meta = _meta_file(meta_rm, k_meta, k, tmpl, eng.backend)
    _check_score_mode(score_mode, tmpl, eng.backend)
    adaptive, adaptive_risk, budget = _adaptive(adaptive, adaptive_risk, budget, k)
    settings = ScoreSettings(
        k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, shuffle=shuffle, force_scores=force_scores, principles=mode, principles_from=principles_file,
        score_mode=score_mode, k_meta=k_meta, meta_rm=f"{saved_meta.model_fingerprint[:12]}:{meta_rm.name}" if saved_meta else None,
        adaptive=adaptive, adaptive_risk=adaptive_risk, budget=budget,
    )
    engine = load_engine(eng, quiet=as_json)
    scorer = _meta_rm(saved_meta, engine, tmpl, eng) if saved_meta else None
    probe = _probe(settings, engine, tmpl, eng)
    records = prepare_records(records, engine, tmpl, settings, lookup, on_long=on_long, errors=problems)
    _report_problems(problems, errors_file or (Path(f"{output}.errors.jsonl") if output else None))
    _report_truncated(records)

    results, _ = _score_loop(records, engine, tmpl, settings, lookup, output, force, print_json=as_json, print_tables=not as_json, chunk=eng.chunk(settings.samples_per_call), meta_rm=scorer, probe=probe)
    _report_principles(results)
    _report_adaptive(results, k)
    say(f"{summary_line(results)}{f'; results in {output}' if output else ''}", "dim")
    if any(r.verdict.totals is None for r in results):
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
    _check_sampling(None, temperature, max_tokens)
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
