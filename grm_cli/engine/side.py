"""A second llama.cpp context on the loaded weights (shared, not copied), for reading what the model
computes about a finished sample: hidden states for the meta RM (`hidden.py`), score probabilities for
expected scores (`probe.py`). One sequence; the holder tracks which tokens its KV cache holds."""

from __future__ import annotations

import os

from grm_cli.engine.model import model_of
from grm_cli.errors import ModelError


class SideContext:
    """`engine`: an in-process engine (or the sample cache over one), or its `Model`."""

    n_batch = 512

    def __init__(self, engine, n_ctx: int, *, what: str, n_threads: int | None = None, verbose: bool = False, pooling_last: bool = False):
        from grm_cli.native import Context

        self.what = what
        self.model = model_of(engine)
        self.n_ctx = n_ctx
        threads = n_threads or max(1, os.cpu_count() or 1)
        self.ctx = Context(self.model.native, n_ctx=n_ctx, n_batch=self.n_batch, n_ubatch=self.n_batch, n_seq_max=1, threads=(threads, threads),
                           pooling_last=pooling_last, verbose=verbose, failure=f"{self.model.path}: llama.cpp could not create a context for {what} (out of memory?)")
        self._held: list[int] = []  # tokens whose KV the context holds, from position 0
        self._split = 0  # where the reusable prompt part of the held tokens ends

    @staticmethod
    def default_n_ctx(engine, extra: int) -> int:
        """The engine's context (the longest text it writes), and `extra` for what is read after it."""
        return max(getattr(engine, "n_ctx", 0), model_of(engine).n_ctx) + extra

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    def _decode(self, tokens: list[int], start: int, *, last: bool) -> None:
        from grm_cli.native import DecodeError

        try:
            self.ctx.decode_sequence(0, tokens, start, chunk=self.n_batch, want_last=last)
        except DecodeError as e:
            self._held = []
            self.ctx.seq_rm(0)
            raise ModelError(f"{e} while reading {self.what}") from None

    def _check_fits(self, tokens: list[int]) -> None:
        if len(tokens) > self.n_ctx:
            raise ModelError(f"{len(tokens)} tokens do not fit the context for {self.what} ({self.n_ctx}): raise --ctx")
