"""The one way to build an engine from settings: the CLI, `grm serve`, the TRL reward hook and the
benchmarks all call `build_engine(EngineOptions(...))`, so every path validates, offloads and caches alike.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from grm_cli.engine.kvplan import CPU_PARALLEL, GPU_PARALLEL
from grm_cli.errors import InputError

ENGINE_KINDS = ("batched", "simple")
BACKENDS = ("llama", "openai")
MIN_CTX = 256

Notify = Callable[[str, Optional[str]], None]  # (message, style) for what the user should know


def _quiet(message: str, style: Optional[str] = None) -> None:
    pass


@dataclass(frozen=True)
class EngineOptions:
    """Everything that decides which engine a run gets and how it is loaded (the shared CLI flags)."""

    model: Optional[str] = None  # GGUF path, alias, or hf://...; None: the default model
    ctx: int = 4096  # tokens per sequence: prompt + generation
    n_gpu_layers: str = "auto"  # a number (-1 = all) or "auto" (what fits in free GPU memory)
    threads: Optional[int] = None  # decode threads (and prompt evaluation's unless threads_batch)
    kv_type: str = "f16"
    flash_attn: bool = False
    mmap: bool = True
    mlock: bool = False
    verbose: bool = False  # llama.cpp's own log
    cache: bool = True  # reuse samples from the sample cache
    engine: str = "batched"  # batched (many sequences per step) or simple (one sample per call)
    parallel: Optional[int] = None  # sequences the batched engine decodes together; None: from the backend
    lora: Optional[Path] = None
    lora_scale: float = 1.0
    backend: str = "llama"  # llama (in-process) or openai (an OpenAI-compatible server)
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    concurrency: int = 8  # requests in flight with --backend openai
    remote_model: Optional[str] = None
    server_n: bool = False
    threads_batch: Optional[int] = None  # prompt-evaluation threads (default: threads)
    chat_template: Optional[str] = None  # for a GGUF without one: the judge protocol's own chat layout (Auto-J's)

    @property
    def remote(self) -> bool:
        return self.backend != "llama"

    def gpu_layers(self) -> Optional[int]:
        """--n-gpu-layers as llama.cpp takes it; None for auto."""
        spec = str(self.n_gpu_layers)
        if spec == "auto":
            return None
        try:
            value = int(spec)
        except ValueError:
            value = -2
        if value < -1:
            raise InputError(f"--n-gpu-layers {spec!r}: expected a number of layers, -1 for all, or auto")
        return value

    def check(self) -> None:
        """Refuse settings that cannot work before anything is loaded."""
        if self.backend not in BACKENDS:
            raise InputError(f"--backend {self.backend!r}: expected llama or openai")
        if self.remote and not self.base_url:
            raise InputError("--backend openai needs --base-url http://HOST:PORT/v1")
        if not self.remote and (self.base_url or self.remote_model):
            raise InputError("--base-url and --remote-model apply to --backend openai")
        if self.engine not in ENGINE_KINDS:
            raise InputError(f"--engine {self.engine!r}: expected batched or simple")
        if self.parallel is not None and self.parallel < 1:
            raise InputError(f"--parallel {self.parallel}: expected a positive number of sequences")
        if self.remote and self.lora is not None:
            raise InputError("--lora applies an adapter in-process (--backend llama); a server loads its adapters itself (llama-server --lora, vLLM --lora-modules)")
        if self.remote:
            return
        from grm_cli.engine.llama import KV_TYPES

        if self.ctx < MIN_CTX:
            raise InputError(f"--ctx {self.ctx} is too small: expected at least {MIN_CTX} tokens")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected a positive number of threads")
        if self.threads_batch is not None and self.threads_batch < 1:
            raise InputError(f"--threads-batch {self.threads_batch}: expected a positive number of threads")
        if self.kv_type not in KV_TYPES:
            raise InputError(f"--kv-type {self.kv_type!r}: expected one of {', '.join(KV_TYPES)}")
        if self.kv_type != "f16" and not self.flash_attn:
            raise InputError(f"--kv-type {self.kv_type} needs --flash-attn (llama.cpp quantizes the V cache only with flash attention)")
        if not math.isfinite(self.lora_scale):
            raise InputError(f"--lora-scale {self.lora_scale}: expected a finite number")
        self.gpu_layers()

    def on_gpu(self) -> bool:
        """Whether the in-process engine will run layers on a GPU (llama.cpp built with one, not -ngl 0)."""
        if self.remote or self.gpu_layers() == 0:
            return False
        from grm_cli.engine.llama import gpu_offload_supported

        return gpu_offload_supported()

    def sequences(self) -> int:
        """--parallel, or when not given, from the backend: on a CPU every sequence's step adds attention
        over every live sequence's cells (a unified cache), so 16; on a GPU a decode step costs about the
        same for 1 or 64 sequences. The work decides the records in flight (`chunk`)."""
        if self.parallel is not None:
            return self.parallel
        return GPU_PARALLEL if self.on_gpu() else CPU_PARALLEL

    def chunk(self, k: int) -> int:
        """Records per engine call: enough samples to fill the batched engine's sequences, or a server's
        requests in flight twice over (so the slowest request does not idle the rest)."""
        if self.remote:
            return max(1, -(-2 * self.concurrency // k))
        return max(1, -(-self.sequences() // k))


def build_engine(options: EngineOptions, *, notify: Notify = _quiet, progress: bool = False):
    """A loaded engine for `options`, wrapped in the sample cache unless options.cache is off."""
    options.check()
    if options.remote:
        from grm_cli.engine.openai import OpenAIEngine, api_key_from_env

        engine = OpenAIEngine(options.base_url, model=options.remote_model, api_key=api_key_from_env(options.api_key_env), n_ctx=options.ctx,
                              concurrency=options.concurrency, use_n=options.server_n)
        notify(f"scoring through {engine.model} at {engine.base_url} ({engine.concurrency} requests in flight)", "dim")
        return _cached(engine, f"openai:{engine.base_url}:{engine.model}", options, notify)
    from grm_cli.engine.llama import LlamaEngine
    from grm_cli.models.registry import resolve_model

    path = resolve_model(options.model, progress=progress)
    layers = options.gpu_layers()
    fit = None
    if layers is None:
        from grm_cli.models.gpus import auto_gpu_layers

        def fit(cells: int) -> int:
            n, why = auto_gpu_layers(path, cells, options.kv_type)
            if n != 0:
                notify(f"--n-gpu-layers auto: {why}", "dim")
            return n

        if options.engine == "batched":
            layers = 0  # the engine decides once its KV cache is sized to the work, and reloads if layers fit
        else:
            layers, fit = fit(options.ctx), None
    notify(f"loading {path.name} …", "dim")
    kwargs = dict(n_gpu_layers=layers, n_threads=options.threads, kv_type=options.kv_type, flash_attn=options.flash_attn, use_mmap=options.mmap,
                  use_mlock=options.mlock, verbose=options.verbose, lora_path=options.lora, lora_scale=options.lora_scale,
                  chat_template=options.chat_template)
    if options.engine == "batched":
        from grm_cli.engine.batched import BatchedLlamaEngine

        engine = BatchedLlamaEngine(path, n_ctx=options.ctx, n_seq_max=options.sequences() + 1, n_threads_batch=options.threads_batch, fit_layers=fit, **kwargs)
    else:
        engine = LlamaEngine(path, n_ctx=options.ctx, **kwargs)  # (llama-cpp-python picks its own prompt threads)
    if engine.n_ctx_train and options.ctx > engine.n_ctx_train:
        notify(f"warning: --ctx {options.ctx} is above the {engine.n_ctx_train} tokens {path.name} was trained for; quality may drop past that", "yellow")
    return _cached(engine, engine.fingerprint, options, notify)


def _cached(engine, fingerprint: str, options: EngineOptions, notify: Notify):
    if not options.cache:
        return engine
    from grm_cli.engine.cache import CachedEngine, SampleCache
    from grm_cli.io.paths import default_cache_dir

    try:
        store = SampleCache(default_cache_dir() / "samples.sqlite")
    except (OSError, sqlite3.Error) as e:
        notify(f"sample cache unavailable ({e}): generating everything", "yellow")
        return engine
    return CachedEngine(engine, store, None, fingerprint=fingerprint)
