"""Decoding one sequence's tokens through llama.cpp's batch API, in chunks: shared by the batched engine
(prompts) and the hidden-state reader (meta RM inputs)."""

from __future__ import annotations


class DecodeError(Exception):
    """llama_decode returned non-zero (KV cache full, or an invalid batch)."""

    def __init__(self, rc: int):
        super().__init__(f"llama_decode failed ({rc})")
        self.rc = rc


def decode_sequence(c, ctx, batch, n_batch: int, seq_id: int, tokens: list[int], start: int, *, want_last: bool) -> int:
    """Decode `tokens` at positions start.. of sequence `seq_id`, n_batch at a time, with logits (or the
    pooled embedding) for the last token only when `want_last`. Returns that token's index in the final
    batch (-1 when not asked)."""
    last = -1
    for off in range(0, len(tokens), n_batch):
        chunk = tokens[off: off + n_batch]
        for i, t in enumerate(chunk):
            batch.token[i] = t
            batch.pos[i] = start + off + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = 0
        if want_last and off + n_batch >= len(tokens):
            batch.logits[len(chunk) - 1] = 1
            last = len(chunk) - 1
        batch.n_tokens = len(chunk)
        rc = c.llama_decode(ctx, batch)
        if rc != 0:
            raise DecodeError(rc)
    return last


class ContextOwner:
    """Frees the llama.cpp context and batch an engine part owns (`ctx`, `_batch`, `_c` = llama_cpp)."""

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
