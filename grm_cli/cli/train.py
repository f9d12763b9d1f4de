"""`grm train ...` and `grm export`: SPCT's training stages, their data, the meta RM, and the way back to llama.cpp.

The whole `grm train` group (rft-data, metarm, rft, rl) and `grm export`, over `grm_cli.train`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from grm_cli.cli.app import app
from grm_cli.cli.console import ConsoleReporter, progress_bar, say
from grm_cli.cli.options import CacheOpt, CtxOpt, GpuOpt, ModelOpt, OnLongOpt, ParallelOpt, SeedOpt, TemplateOpt, ThreadsOpt, VerboseOpt, engine_flags, flag_bundle, load_engine
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import InputError
from grm_cli.scoring.options import check_sampling

train_app = typer.Typer(help="Train the parts of a GRM: SPCT (rejective fine-tuning, rule-based RL) as LoRA adapters, their data, and the meta RM for guided voting.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("rft-data")
@engine_flags("lora", "batching")
def train_rft_data(
    file: str = typer.Argument(..., metavar="DATA.jsonl", help="Labelled records: prompt + responses + preferred, chosen/rejected, or a single response with its 0/1 label."),
    output: Path = typer.Option(..., "--output", "-o", help="The dataset: one JSON line per record (status, counts, TRL prompt-completion examples). An existing file is resumed."),
    k: int = typer.Option(3, "--samples", "-k", help="Unhinted samples per record (the paper's N = 3)."),
    hint: bool = typer.Option(True, "--hint/--no-hint", help="Hinted sampling: for records not too easy, one more sample with the labelled best named in the input, kept if right (trained without the hint)."),
    template: str = TemplateOpt,
    temperature: float = typer.Option(0.5, "--temperature", help="Sampling temperature."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON lines to stdout too."),
    on_long: str = OnLongOpt,
    seed: int = SeedOpt,
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Rejective fine-tuning data (SPCT's cold start): sample N trajectories per labelled record with the
    current GRM, keep those whose scores single out the label, drop records where all N are right (too easy),
    and add hinted trajectories. The examples are in TRL's prompt-completion form for supervised fine-tuning.

    Examples:

      grm train rft-data examples/llmbar_all.jsonl -o rft.jsonl

      grm train rft-data train.jsonl -k 3 --model grm.gguf -o rft.jsonl && jq -c '.examples[]' rft.jsonl > sft.jsonl
    """
    from grm_cli.core.prompt import load_template
    from grm_cli.io.jsonl import read_records
    from grm_cli.scoring.settings import ScoreSettings
    from grm_cli.train.rft_data import labelled_for_training, rejective_sampling

    check_sampling(k, temperature, max_tokens)
    if on_long not in ("error", "truncate"):
        raise InputError(f"--on-long {on_long!r}: expected error or truncate")
    tmpl = load_template(template)
    records = labelled_for_training(read_records(file), tmpl)
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens)
    engine = load_engine(eng, quiet=as_json)
    rejective_sampling(records, engine, tmpl, settings, output, hint=hint, force=force, chunk=eng.chunk(k), on_long=on_long,
                       reporter=ConsoleReporter(print_json=as_json))


@train_app.command("metarm")
@engine_flags("lora", cache=False, engine="simple")
def train_metarm(
    runs: List[Path] = typer.Argument(..., metavar="RUNS.jsonl...", help="Results of `grm score --output` (or `grm eval --output`) on labelled records; every parsed sample is a trajectory."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the meta RM (a small JSON file)."),
    template: str = TemplateOpt,
    holdout: float = typer.Option(0.2, "--holdout", help="Share of records held out to measure AUC and accuracy (all samples of a record stay on one side)."),
    l2: Optional[float] = typer.Option(None, "--l2", help="L2 penalty of the logistic head. Default: chosen by cross-validation over records (0.1 to 1000)."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Replace an existing --output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
    seed: int = SeedOpt,
    eng: EngineOptions = EngineOptions(),
) -> None:
    """Train the built-in meta RM: a logistic head on the GRM's last-token hidden state of each sampled
    trajectory, labelled right or wrong by the paper's rule (the sample's scores single out the labelled best).

    Examples:

      grm score labelled.jsonl -k 8 -o run.jsonl && grm train metarm run.jsonl -o metarm.json

      grm score test.jsonl -k 8 --meta-rm metarm.json --k-meta 4
    """
    from grm_cli.cli.render import metarm_table
    from grm_cli.core.prompt import load_template
    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.model import model_of
    from grm_cli.metarm.train import read_runs, train_from_runs

    if output.exists() and not force:
        raise InputError("exists: a trained meta RM is never overwritten by accident (use another --output, or --force)", str(output))
    if output.is_dir() or not output.parent.resolve().is_dir() or not os.access(output.parent.resolve(), os.W_OK):
        raise InputError("cannot be written (a folder, or its folder is missing or read-only): choose another --output", str(output))
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"--holdout {holdout}: expected a share from 0 to below 1")
    if l2 is not None and not l2 > 0:
        raise InputError(f"--l2 {l2}: expected a positive penalty")
    tmpl = load_template(template)
    items, sources, models_seen = read_runs(runs, tmpl, notify=say)
    engine = load_engine(eng, quiet=as_json)
    base = model_of(engine)
    others = {m for m in models_seen if m != base.name and Path(m).name != base.path.name}  # a served model is named by its path
    if others:
        say(f"warning: the runs were generated by {', '.join(sorted(others))}; the meta RM reads the hidden states of {base.name} (use --model to match)", "yellow")
    hidden = HiddenStates(engine, n_ctx=eng.ctx + 512, n_threads=eng.threads, verbose=eng.verbose)
    saved, report = train_from_runs(items, sources, engine, hidden, tmpl, holdout=holdout, seed=seed, l2=l2, track=progress_bar("hidden states"))
    saved.save(output)
    if as_json:
        sys.stdout.write(json.dumps({"output": str(output), **report.to_json()}, indent=2) + "\n")
    else:
        Console().print(metarm_table(report))
    say(f"meta RM saved to {output} (for {base.name}, template {tmpl.name})", "dim")


ConfigOpt = typer.Option(None, "--config", help="A YAML file of training settings (shared keys, and rft:/rl: sections); flags override it.")
OutOpt = typer.Option(..., "--out", "-o", help="The run folder: settings, metrics.jsonl, checkpoints, adapter/ (and adapter.gguf).")
ResumeOpt = typer.Option(False, "--resume", help="Go on from the last checkpoint in --out (and from the sampled data it holds).")
ExportOpt = typer.Option(True, "--export/--no-export", help="Also write OUT/adapter.gguf for `grm score --lora` (when the model is a GGUF).")
# The LoRA and optimiser flags train rft and train rl share, generated from TrainingConfig's fields: each
# flag's help and default live once, in train/settings.py (TRL's TrlParser way).
_FLAG_NAMES = {"learning_rate": "lr"}  # a field whose flag is spelled otherwise
_SHARED_FLAGS = ("lora_rank", "lora_alpha", "lora_targets", "learning_rate", "steps", "epochs", "batch", "grad_accum", "max_length", "dtype", "seed")


def _training_flags() -> list:
    """(parameter, settings field, annotation, option) per shared training flag, from the config's metadata."""
    from dataclasses import fields as dc_fields

    from grm_cli.train.settings import TrainingConfig

    annotations = {int: Optional[int], float: Optional[float], str: Optional[str]}
    out = []
    for f in dc_fields(TrainingConfig):
        if f.name not in _SHARED_FLAGS:
            continue
        name = _FLAG_NAMES.get(f.name, f.name)
        default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        ann = annotations.get(type(f.default), Optional[str])  # a tuple (lora_targets) is given comma-separated
        words = f.metadata["help"]
        option = typer.Option(None, f"--{name.replace('_', '-')}", help=words if "default" in words.lower() else f"{words} (default {default})")
        out.append((name, f.name, ann, option))
    return out


_TRAINING_FLAGS = _training_flags()
training_flags = flag_bundle(_TRAINING_FLAGS, "hp", dict)  # hp: the flags given ({field: value or None})


def _settings(stage: str, config: Optional[Path], **flags):
    from grm_cli.cli.console import lines_off
    from grm_cli.train.run_dir import is_main_process
    from grm_cli.train.settings import load_settings

    if not is_main_process():
        lines_off()  # rank 0 tells the story once
    return load_settings(stage, config, flags)


def _labelled(file: str, tmpl):
    from grm_cli.io.jsonl import read_records
    from grm_cli.train.rft_data import labelled_for_training

    return labelled_for_training(read_records(file), tmpl, "training")


def _model_ref(model: Optional[str]) -> str:
    from grm_cli.train.base_model import resolve_ref

    return resolve_ref(model)


def _export_next_to(run, model_ref: str, export: bool) -> Optional[Path]:
    from grm_cli.train.run_dir import is_main_process

    if not export or not is_main_process():
        return None
    if not model_ref.lower().endswith(".gguf"):
        say("not exported: the model is not a GGUF; convert it with llama.cpp, then `grm export OUT/adapter --to adapter.gguf`", "dim")
        return None
    from grm_cli.train.export import read_peft_adapter, write_adapter_gguf

    return write_adapter_gguf(read_peft_adapter(run.adapter), run.root / "adapter.gguf", name=f"grm {run.root.name}")


@train_app.command("rft")
@training_flags
def train_rft(
    file: str = typer.Argument(..., metavar="DATA.jsonl", help="Labelled records: prompt + responses + preferred, chosen/rejected, or a single response with its 0/1 label."),
    out: Path = OutOpt,
    model: Optional[str] = ModelOpt,
    config: Optional[Path] = ConfigOpt,
    accepted: Optional[Path] = typer.Option(None, "--accepted", help="Train on this `grm train rft-data` file instead of sampling anew."),
    gguf: Optional[str] = typer.Option(None, "--gguf", help="When --model is a Hugging Face model: the GGUF of the same weights that llama.cpp samples with."),
    samples: Optional[int] = typer.Option(None, "--samples", "-k", help="N: unhinted samples per record (default 3, the paper's)."),
    hint: Optional[bool] = typer.Option(None, "--hint/--no-hint", help="Hinted sampling for records that are not too easy (default on)."),
    balance: Optional[bool] = typer.Option(None, "--balance-positions/--no-balance-positions", help="Train on as many trajectories with the best response shown first as shown second (drops the surplus): keeps the sampling model's position bias out of the SFT data (default off, as in the paper)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Budget for the principles and critique of one sampled trajectory (default 512)."),
    mix: Optional[str] = typer.Option(None, "--mix", help="General instruction data (JSONL: messages, or prompt + completion) mixed into the SFT data."),
    mix_ratio: Optional[float] = typer.Option(None, "--mix-ratio", help="Mixed-in examples per GRM example (e.g. 0.5)."),
    template: str = TemplateOpt,
    resume: bool = ResumeOpt,
    export: bool = ExportOpt,
    on_long: str = OnLongOpt, ctx: int = CtxOpt, n_gpu_layers: str = GpuOpt, threads: Optional[int] = ThreadsOpt,
    parallel: int = ParallelOpt, cache: bool = CacheOpt, verbose: bool = VerboseOpt,
    hp: dict = None,
) -> None:
    """Rejective fine-tuning (SPCT's cold start): sample N trajectories per labelled record with the current
    GRM through llama.cpp, keep the right ones (and right hinted ones, trained without the hint), drop records
    that are too easy, write them to OUT/accepted.jsonl, then fit a LoRA adapter on them by supervised
    fine-tuning. Needs the training extra: pip install torch==2.13.0 'grm-cli[train]'.

    Examples:

      grm train rft examples/arithmetic_train.jsonl -o runs/rft --steps 60

      grm train rft train.jsonl -m grm.gguf -o runs/rft --config train.yaml --mix general.jsonl --mix-ratio 0.5

      accelerate launch -m grm_cli train rft train.jsonl -m grm.gguf -o runs/rft --accepted runs/rft/accepted.jsonl
    """
    from grm_cli.core.prompt import load_template
    from grm_cli.train.deps import require_training_stack
    from grm_cli.train.run_dir import RunDir
    from grm_cli.train.stages import fit_rft

    require_training_stack()
    s = _settings("rft", config, samples=samples, hint=hint, max_tokens=max_tokens, balance_positions=balance, mix=mix, mix_ratio=mix_ratio, **hp)
    tmpl = load_template(template)
    model_ref = _model_ref(model)
    run = RunDir(out)
    run.open(resume=resume)
    run.save_settings(s, {"stage": "rft", "model": model_ref, "template": tmpl.name, "data": file})
    if accepted is None:
        from grm_cli.train.run_dir import world_size

        if world_size() > 1:
            raise InputError("under accelerate launch every process would sample: sample once first (grm train rft-data, or grm train rft on one process), then pass --accepted")
        sampler = gguf or model_ref
        if not sampler.lower().endswith(".gguf"):
            raise InputError(f"--model {model_ref} is not a GGUF: give --gguf (the same weights for llama.cpp) to sample with, or --accepted to train on sampled data")
        if on_long not in ("error", "truncate"):
            raise InputError(f"--on-long {on_long!r}: expected error or truncate")
        from grm_cli.scoring.settings import ScoreSettings
        from grm_cli.train.rft_data import rejective_sampling

        records = _labelled(file, tmpl)
        scoring = ScoreSettings(k=s.samples, temperature=s.temperature, seed=s.seed, max_tokens=s.max_tokens)
        engine = load_engine(EngineOptions(model=sampler, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, verbose=verbose, cache=cache, parallel=parallel), quiet=False)
        stats = rejective_sampling(records, engine, tmpl, scoring, run.accepted, hint=s.hint, chunk=EngineOptions(parallel=parallel).chunk(s.samples),
                                   on_long=on_long, reporter=ConsoleReporter())
        run.log({"stage": "rft", "event": "acceptance", **stats})
        del engine  # llama.cpp's memory goes back before torch loads the weights
        accepted = run.accepted
    say(f"fitting a LoRA (rank {s.lora_rank}) on the accepted trajectories of {accepted} …", "dim")
    summary = fit_rft(model_ref, accepted, run, s, tmpl, resume=resume)
    left = summary["too_long"]
    balanced = f", {summary['dropped_to_balance']} dropped to balance positions" if s.balance_positions else ""
    say(f"adapter: {summary['adapter']} ({summary['grm']} GRM examples{balanced}, {summary['mix']} mixed in; left out as longer than {s.max_length} tokens: {left['grm']} + {left['mix']}); metrics: {run.metrics}")
    gguf_out = _export_next_to(run, model_ref, export)
    if gguf_out:
        say(f"llama.cpp adapter: {gguf_out}  (grm score DATA --model {model_ref} --lora {gguf_out})")
    say(f"next: grm train rl {file} --adapter {run.adapter} -o RL_OUT", "dim")


@train_app.command("rl")
@training_flags
def train_rl(
    file: str = typer.Argument(..., metavar="DATA.jsonl", help="Labelled records (as for `grm train rft`)."),
    out: Path = OutOpt,
    model: Optional[str] = ModelOpt,
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="Start from this RFT adapter folder (OUT/adapter of `grm train rft`); it is also the KL reference."),
    rft_data: Optional[Path] = typer.Option(None, "--rft-data", help="An accepted.jsonl of `grm train rft`: records it marked too easy are left out (as in the paper)."),
    config: Optional[Path] = ConfigOpt,
    group: Optional[int] = typer.Option(None, "--group", "-G", help="GRPO group size: completions per prompt (default 4)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="KL penalty to the reference (default 0.08, the paper's for 27B)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature of the completions (default 1.0)."),
    max_completion: Optional[int] = typer.Option(None, "--max-completion", help="Most tokens of one completion (default 512); a cut-off one is unparsed, so -1."),
    template: str = TemplateOpt,
    resume: bool = ResumeOpt,
    export: bool = ExportOpt,
    hp: dict = None,
) -> None:
    """Rule-based online RL (SPCT's second stage): GRPO whose reward is +1 when a sampled judgment's scores
    single out the labelled best response (or equal a single response's label), else -1; no format reward,
    a KL penalty (--beta) to the reference keeps the format. Trains a LoRA on top of --adapter when given.

    Examples:

      grm train rl examples/arithmetic_train.jsonl --adapter runs/rft/adapter --rft-data runs/rft/accepted.jsonl -o runs/rl --steps 40

      accelerate launch -m grm_cli train rl train.jsonl -m grm.gguf --adapter runs/rft/adapter -o runs/rl --config train.yaml
    """
    from grm_cli.core.prompt import load_template
    from grm_cli.train.deps import require_training_stack
    from grm_cli.train.run_dir import RunDir
    from grm_cli.train.stages import fit_rl

    require_training_stack()
    s = _settings("rl", config, group=group, beta=beta, temperature=temperature, max_completion=max_completion, **hp)
    tmpl = load_template(template)
    model_ref = _model_ref(model)
    records = _labelled(file, tmpl)
    if rft_data is not None and s.drop_too_easy:
        from grm_cli.train.sft import too_easy_ids

        easy = too_easy_ids(rft_data)
        kept = [r for r in records if r.id not in easy]
        say(f"{len(records) - len(kept)} records left out as too easy (all right in {rft_data})", "dim")
        records = kept
    run = RunDir(out)
    run.open(resume=resume)
    run.save_settings(s, {"stage": "rl", "model": model_ref, "template": tmpl.name, "data": file, "adapter": str(adapter) if adapter else None})
    summary = fit_rl(model_ref, records, run, s, tmpl, rft_adapter=adapter, resume=resume)
    say(f"adapter: {summary['adapter']} ({summary['records']} records, {summary['completions']} completions judged, {summary['unparsed']} unparsed); metrics: {run.metrics}")
    if summary["completions"] and summary["unparsed"] == summary["completions"]:
        say("warning: no completion had a valid score line, so every reward was -1 and RL had nothing to learn from; "
            "start from an RFT adapter (--adapter), or raise --max-completion", "yellow")
    gguf_out = _export_next_to(run, model_ref, export)
    if gguf_out:
        say(f"llama.cpp adapter (RFT and RL in one): {gguf_out}  (grm score DATA --model {model_ref} --lora {gguf_out})")


@app.command("export")
def export_adapter(
    adapter: Path = typer.Argument(..., metavar="ADAPTER_DIR", help="An adapter folder of `grm train rft`/`rl` (OUT/adapter)."),
    to: Path = typer.Option(..., "--to", help="Where to write: a LoRA adapter GGUF, or with --merge a whole model GGUF."),
    merge: bool = typer.Option(False, "--merge", help="Write the base GGUF with the adapter merged in and quantized (no --lora needed to use it)."),
    base: Optional[str] = typer.Option(None, "--base", help="With --merge: the base GGUF (default: the one the adapter was trained on)."),
    quant: str = typer.Option("Q8_0", "--quant", help="With --merge: the type to quantize to (llama.cpp's names: Q4_K_M, Q8_0, F16, ...)."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Replace --to if it exists."),
) -> None:
    """Write a trained LoRA for llama.cpp: an adapter GGUF that `grm score --lora` loads (q/k rows permuted
    as llama.cpp stores llama weights; an RL adapter stacked on an RFT one becomes one adapter), or with
    --merge a quantized model GGUF with the adapter folded in.

    Examples:

      grm export runs/rl/adapter --to grm-lora.gguf && grm score examples/llmbar.jsonl --lora grm-lora.gguf

      grm export runs/rl/adapter --merge --quant Q4_K_M --to grm-spct.Q4_K_M.gguf
    """
    from grm_cli.train.export import read_peft_adapter, write_adapter_gguf

    if to.exists() and not force:
        raise InputError(f"{to}: exists; add --force to replace it")
    weights = read_peft_adapter(adapter)
    if merge:
        from grm_cli.train.merge import merge_into_gguf

        base_path = Path(base) if base else Path(weights.base.ref)
        if not base_path.is_file() or base_path.suffix.lower() != ".gguf":
            raise InputError(f"{base_path}: --merge needs the base model as a GGUF file (give --base)")
        merge_into_gguf(weights, base_path, to, quant=quant)
        say(f"merged model: {to} ({quant}); use it as --model {to}")
        return
    write_adapter_gguf(weights, to, name=f"grm {adapter.resolve().parent.name}")
    say(f"adapter: {to} ({len(weights.pairs)} weights adapted); use it as --lora {to} with --model {weights.base.ref}")
