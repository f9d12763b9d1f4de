"""A second llama.cpp context on the loaded weights (shared, not copied), for reading what the model
computes about a finished sample: hidden states for the meta RM (`hidden.py`), score probabilities for
expected scores (`probe.py`). One sequence; the holder tracks which tokens its KV cache holds."""

from __future__ import annotations

import os

from grm_cli.engine.chunks import ContextOwner, DecodeError, decode_sequence
from grm_cli.engine.llama import LlamaEngine, captured_stderr
from grm_cli.errors import ModelError


def base_engine(engine) -> LlamaEngine:
    """The LlamaEngine under the wrappers (cache, batched engine) that holds the weights and chat template."""
    seen = engine
    for _ in range(4):
        if isinstance(seen, LlamaEngine):
            return seen
        seen = getattr(seen, "inner", None) or getattr(seen, "base", None)
        if seen is None:
            break
    raise ModelError(f"{type(engine).__name__}: this needs the in-process llama.cpp engine (--backend llama)")


class SideContext(ContextOwner):
    n_batch = 512

    def __init__(self, engine, n_ctx: int, *, what: str, n_threads: int | None = None, verbose: bool = False, pooling_last: bool = False):
        from grm_cli.native import lib

        self._c = lib
        self.what = what
        self.engine = base_engine(engine)
        self.model = self.engine.llm.model
        self.n_ctx = n_ctx
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = 1
        params.embeddings = False
        if pooling_last:
            params.pooling_type = lib.LLAMA_POOLING_TYPE_LAST
        params.n_threads = params.n_threads_batch = n_threads or max(1, os.cpu_count() or 1)
        params.no_perf = True
        with captured_stderr(not verbose):
            self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise ModelError(f"{self.engine.path}: llama.cpp could not create a context for {what} (out of memory?)")
        self.engine.attach_adapter(self.ctx)
        self._mem = lib.llama_get_memory(self.ctx)
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._held: list[int] = []  # tokens whose KV the context holds, from position 0
        self._split = 0  # where the reusable prompt part of the held tokens ends

    def _decode(self, tokens: list[int], start: int, *, last: bool) -> None:
        try:
            decode_sequence(self._c, self.ctx, self._batch, self.n_batch, 0, tokens, start, want_last=last)
        except DecodeError as e:
            self._held = []
            self._c.llama_memory_seq_rm(self._mem, 0, -1, -1)
            raise ModelError(f"{e} while reading {self.what}") from None

    def _check_fits(self, tokens: list[int]) -> None:
        if len(tokens) > self.n_ctx:
            raise ModelError(f"{len(tokens)} tokens do not fit the context for {self.what} ({self.n_ctx}): raise --ctx")
