"""The last token's final hidden state of a text: the input of the built-in meta RM's value head.

A second llama.cpp context on the loaded weights (shared, not copied) with last-token pooling. The text is
prefilled with embeddings off (no logits or vectors for every token), then only the last token is decoded
with embeddings on, so llama.cpp pools exactly that token. Consecutive texts that share a prefix (the k
samples of one record share the whole query and responses) keep that prefix's KV cache.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from grm_cli.engine.side import SideContext
from grm_cli.errors import ModelError


class HiddenStates(SideContext):
    """last_hidden(messages, assistant_text) -> the final-norm hidden state of the last token (n_embd floats)."""

    def __init__(self, engine, n_ctx: int | None = None, n_threads: int | None = None, verbose: bool = False):
        super().__init__(engine, n_ctx or self.default_n_ctx(engine, 256), what="the meta RM's hidden states",
                         n_threads=n_threads, verbose=verbose, pooling_last=True)
        self.n_embd = self.model.native.n_embd

    def tokens(self, messages: Sequence[dict], assistant_text: str) -> list[int]:
        return self.model.tokens(messages, assistant_text)

    def last_hidden(self, messages: Sequence[dict], assistant_text: str) -> np.ndarray:
        """The prompt part (the chat up to the assistant's turn) is decoded as its own chunks, and kept for
        the next call when that has the same prompt; the assistant text follows in its own chunks. So a
        text's vector never depends on what was computed before it (llama.cpp's arithmetic differs with
        batch shapes, so a prefix reused at an arbitrary split would not reproduce)."""
        prompt = self.model.tokens(messages, "")
        full = self.tokens(messages, assistant_text)
        split = len(prompt) if len(full) > len(prompt) and full[: len(prompt)] == prompt else 0
        return self.of_tokens(full, split)

    def of_tokens(self, tokens: list[int], split: int = 0) -> np.ndarray:
        """tokens[:split] is a reusable prompt (decoded alone); the rest is decoded after it."""
        if not tokens:
            raise ValueError("no tokens")
        self._check_fits(tokens)
        split = min(split, len(tokens) - 1)
        reuse = split and len(self._held) >= split and self._held[:split] == tokens[:split] and self._split == split
        # keep the prompt, drop the rest; a recurrent model cannot drop a tail: then start over
        if not (reuse and self.ctx.seq_rm(0, split, -1)):
            self.ctx.seq_rm(0)
            self._held = []
            self._decode(tokens[:split], 0, last=False)
        self._split = split
        self._held = list(tokens[:split])
        self._decode(tokens[split:-1], split, last=False)
        self.ctx.set_embeddings(True)
        try:
            self._decode(tokens[-1:], len(tokens) - 1, last=True)
            vec = self.ctx.pooled_embedding(0)
            if vec is None:
                raise ModelError("llama.cpp returned no pooled hidden state for the meta RM input")
        finally:
            self.ctx.set_embeddings(False)
        self._held = list(tokens)
        return vec
