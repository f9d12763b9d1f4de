"""Owners of a llama.cpp context and its batch (llama-cpp-python's `_internals.LlamaContext` / `LlamaBatch`):
each frees what it allocated, once, and the context's calls raise instead of returning codes.

Once, even under Ctrl-C: an owner forgets its pointer before it frees it. Freed first and forgotten after,
a KeyboardInterrupt raised between the two (Python runs the handler between any two bytecodes) left a
freed pointer that `__del__` freed again: "double free or corruption", exit -6 or -11 instead of 130, in
one Ctrl-C of a few under load. Forgotten first, the worst case is a leak at exit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llama_cpp as lib

from grm_cli.errors import ModelError
from grm_cli.native.log import captured_stderr
from grm_cli.native.owner import NativeOwner

if TYPE_CHECKING:
    import numpy as np

    from grm_cli.native.model import NativeModel


class DecodeError(Exception):
    """llama_decode returned non-zero (KV cache full, or an invalid batch)."""

    def __init__(self, rc: int):
        super().__init__(f"llama_decode failed ({rc})")
        self.rc = rc


class Batch(NativeOwner):
    """A llama_batch of up to `size` tokens, each in one sequence, filled with `add` from index 0."""

    def __init__(self, size: int):
        self.size = size
        self.n = 0
        self._b = lib.llama_batch_init(size, 0, 1)

    def clear(self) -> None:
        self.n = 0

    def add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Append a token at `pos` of `seq_id`, with its logits (or pooled embedding) computed when asked;
        returns its index in the batch."""
        b, i = self._b, self.n
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = 1 if logits else 0
        self.n = i + 1
        return i

    def close(self) -> None:
        b, self._b = self._b, None  # forgotten before it is freed (the module docstring says why)
        if b is not None:
            lib.llama_batch_free(b)


class Context(NativeOwner):
    """A llama.cpp context on a loaded model: its KV cache (sequences by id), decoding, logits and pooled
    embeddings. The adapter loaded with the weights is applied to it. `None` settings are llama.cpp's
    defaults; `failure` is the error a refused context raises (out of memory, mostly)."""

    def __init__(self, model: "NativeModel", *, n_ctx: int, n_batch: int, n_ubatch: int, n_seq_max: int, threads: tuple[int, int],
                 failure: str, kv_unified: bool = False, kv_type: str | None = None, flash_attn: bool | None = None,
                 pooling_last: bool = False, verbose: bool = False):
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_ubatch
        params.n_seq_max = n_seq_max
        if kv_unified:
            params.kv_unified = True  # copied prefixes share cells instead of duplicating them (partial copies need it)
        params.n_threads, params.n_threads_batch = threads
        if kv_type is not None:
            params.type_k = params.type_v = getattr(lib, f"GGML_TYPE_{kv_type.upper()}")
        if flash_attn is not None:
            params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lib.LLAMA_FLASH_ATTN_TYPE_AUTO
        params.embeddings = False
        if pooling_last:
            params.pooling_type = lib.LLAMA_POOLING_TYPE_LAST
        params.no_perf = True
        self.ptr = None
        self.batch: Batch | None = None
        with captured_stderr(not verbose):  # llama.cpp warns, e.g. that a shared cache exceeds the trained context
            ptr = lib.llama_init_from_model(model.ptr, params)
        if not ptr:
            raise ModelError(failure)
        self.ptr, self.model = ptr, model  # the model outlives its contexts
        model.attach_adapter(ptr)
        self._mem = lib.llama_get_memory(ptr)
        self.n_ctx = int(lib.llama_n_ctx(ptr))
        self.n_batch = int(lib.llama_n_batch(ptr))
        self.batch = Batch(n_batch)

    # -- decoding --------------------------------------------------------------------------------
    def decode(self, batch: Batch | None = None) -> None:
        """Decode what `batch` (the context's own by default) holds; DecodeError when llama.cpp refuses."""
        b = batch or self.batch
        b._b.n_tokens = b.n
        rc = lib.llama_decode(self.ptr, b._b)
        if rc != 0:
            raise DecodeError(rc)

    def decode_sequence(self, seq_id: int, tokens: list[int], start: int, *, chunk: int, want_last: bool) -> int:
        """Decode `tokens` at positions start.. of sequence `seq_id`, `chunk` at a time, with logits (or the
        pooled embedding) for the last token only when `want_last`. Returns that token's index in the
        final batch (-1 when not asked)."""
        last = -1
        b = self.batch
        for off in range(0, len(tokens), chunk):
            part = tokens[off: off + chunk]
            final = want_last and off + chunk >= len(tokens)
            b.clear()
            for i, t in enumerate(part):
                b.add(t, start + off + i, seq_id, final and i == len(part) - 1)
            if final:
                last = len(part) - 1
            self.decode(b)
        return last

    # -- the KV cache ----------------------------------------------------------------------------
    def seq_rm(self, seq_id: int, p0: int = -1, p1: int = -1) -> bool:
        """Drop positions [p0, p1) of a sequence (-1: open end). False where llama.cpp cannot (a recurrent
        model cannot drop a tail)."""
        return bool(lib.llama_memory_seq_rm(self._mem, seq_id, p0, p1))

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        """Let `dst` share `src`'s cells at positions [p0, p1) (no copy in a unified cache)."""
        lib.llama_memory_seq_cp(self._mem, src, dst, p0, p1)

    def seq_span(self, seq_id: int) -> tuple[int, int]:
        """The first and last position a sequence holds ((-1, -1) when empty)."""
        return int(lib.llama_memory_seq_pos_min(self._mem, seq_id)), int(lib.llama_memory_seq_pos_max(self._mem, seq_id))

    # -- outputs ---------------------------------------------------------------------------------
    def logits(self, idx: int) -> "np.ndarray":
        """The logits at batch index `idx` (-1: the last computed), a view that the next decode overwrites."""
        import numpy as np

        return np.ctypeslib.as_array(lib.llama_get_logits_ith(self.ptr, idx), shape=(self.model.n_vocab,))

    def set_embeddings(self, on: bool) -> None:
        lib.llama_set_embeddings(self.ptr, on)

    def pooled_embedding(self, seq_id: int) -> "np.ndarray | None":
        """A copy of the sequence's pooled embedding (the context pools the last token), or None."""
        import numpy as np

        ptr = lib.llama_get_embeddings_seq(self.ptr, seq_id)
        if not ptr:
            return None
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_embd,)).astype(np.float32).copy()

    def close(self) -> None:
        batch, self.batch = self.batch, None
        if batch is not None:
            batch.close()
        ptr, self.ptr = self.ptr, None
        if ptr:
            lib.llama_free(ptr)
