"""The last token's final hidden state of a text: the input of the built-in meta RM's value head.

A second llama.cpp context on the loaded weights (shared, not copied) with last-token pooling. The text is
prefilled with embeddings off (no logits or vectors for every token), then only the last token is decoded
with embeddings on, so llama.cpp pools exactly that token. Consecutive texts that share a prefix (the k
samples of one record share the whole query and responses) keep that prefix's KV cache.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..errors import ModelError
from .chunks import DecodeError, decode_sequence
from .llama import LlamaEngine, captured_stderr


def base_engine(engine) -> LlamaEngine:
    """The LlamaEngine under the wrappers (cache, batched engine) that holds the weights and chat template."""
    seen = engine
    for _ in range(4):
        if isinstance(seen, LlamaEngine):
            return seen
        seen = getattr(seen, "inner", None) or getattr(seen, "base", None)
        if seen is None:
            break
    raise ModelError(f"{type(engine).__name__}: the meta RM's hidden states need the in-process llama.cpp engine")


class HiddenStates:
    """last_hidden(messages, assistant_text) -> the final-norm hidden state of the last token (n_embd floats)."""

    def __init__(self, engine, n_ctx: int | None = None, n_threads: int | None = None, verbose: bool = False):
        import llama_cpp

        self._c = llama_cpp
        self.engine = base_engine(engine)
        model = self.engine.llm._model.model
        self.n_embd = int(llama_cpp.llama_model_n_embd(model))
        self.n_ctx = n_ctx or max(getattr(engine, "n_ctx", 0), self.engine.n_ctx) + 256
        self.n_batch = 512
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.n_ctx
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = 1
        params.embeddings = False
        params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_LAST
        threads = n_threads or max(1, os.cpu_count() or 1)
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        with captured_stderr(not verbose):
            self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise ModelError(f"{self.engine.path}: llama.cpp could not create a context for the meta RM's hidden states (out of memory?)")
        self._mem = llama_cpp.llama_get_memory(self.ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._held: list[int] = []  # tokens whose KV the context holds, from position 0
        self._split = 0  # where the prompt part of the held tokens ends

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            self._c.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "ctx", None):
            self._c.llama_free(self.ctx)
            self.ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def tokens(self, messages: Sequence[dict], assistant_text: str) -> list[int]:
        return self.engine._tokens(self.engine.render(messages, assistant_text))

    def last_hidden(self, messages: Sequence[dict], assistant_text: str) -> np.ndarray:
        """The prompt part (the chat up to the assistant's turn) is decoded as its own chunks, and kept for
        the next call when that has the same prompt; the assistant text follows in its own chunks. So a
        text's vector never depends on what was computed before it (llama.cpp's arithmetic differs with
        batch shapes, so a prefix reused at an arbitrary split would not reproduce)."""
        prompt = self.engine._tokens(self.engine.render(messages, ""))
        full = self.tokens(messages, assistant_text)
        split = len(prompt) if len(full) > len(prompt) and full[: len(prompt)] == prompt else 0
        return self.of_tokens(full, split)

    def of_tokens(self, tokens: list[int], split: int = 0) -> np.ndarray:
        """tokens[:split] is a reusable prompt (decoded alone); the rest is decoded after it."""
        if not tokens:
            raise ValueError("no tokens")
        if len(tokens) > self.n_ctx:
            raise ModelError(f"a meta RM input of {len(tokens)} tokens does not fit the hidden-state context ({self.n_ctx}): raise --ctx")
        split = min(split, len(tokens) - 1)
        reuse = split and len(self._held) >= split and self._held[:split] == tokens[:split] and self._split == split
        # keep the prompt, drop the rest; a recurrent model cannot drop a tail: then start over
        if not (reuse and self._c.llama_memory_seq_rm(self._mem, 0, split, -1)):
            self._c.llama_memory_seq_rm(self._mem, 0, -1, -1)
            self._held = []
            self._decode(tokens[:split], 0, last=False)
        self._split = split
        self._held = list(tokens[:split])
        self._decode(tokens[split:-1], split, last=False)
        self._c.llama_set_embeddings(self.ctx, True)
        try:
            self._decode(tokens[-1:], len(tokens) - 1, last=True)
            ptr = self._c.llama_get_embeddings_seq(self.ctx, 0)
            if not ptr:
                raise ModelError("llama.cpp returned no pooled hidden state for the meta RM input")
            vec = np.ctypeslib.as_array(ptr, shape=(self.n_embd,)).astype(np.float32).copy()
        finally:
            self._c.llama_set_embeddings(self.ctx, False)
        self._held = list(tokens)
        return vec

    def _decode(self, tokens: list[int], start: int, *, last: bool) -> None:
        try:
            decode_sequence(self._c, self.ctx, self._batch, self.n_batch, 0, tokens, start, want_last=last)
        except DecodeError as e:
            self._held = []
            self._c.llama_memory_seq_rm(self._mem, 0, 0, -1)
            raise ModelError(f"{e} while reading the meta RM's hidden state") from None
