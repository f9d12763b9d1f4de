"""A llama.cpp engine that decodes many samples at once, sharing their prompts' KV cache.

Why: voting@k costs k generations. `Llama` (the high-level API) decodes one sequence at a time; on a
CPU that leaves most of the matrix units idle, and on a GPU almost all of them. Here one context holds
many sequences:

- the prefix all prompts of a call share (the template's instructions) is decoded once into sequence 0;
- each distinct prompt copies that prefix (`llama_memory_seq_cp`, no recomputation in a unified KV cache),
  or a longer one from the prompt admitted just before it (the same record in another response order:
  its query is decoded once), and decodes only its own tail; its k samples copy the whole prompt;
- the cache is sized to the work (`kvplan`): the cells the first wave of requests occupies, grown when
  a later call needs more, rather than a fixed multiple of --ctx;
- a prompt whose requests ask for it (`keep_prompt`: adaptive voting's rounds) keeps its cells, and its
  last-token logits, in a sequence of its own once its samples are done (`_kept`, up to --parallel of
  them), until the cells are needed or a call comes that cannot use it: the next round's samples of that
  prompt copy it whole and decode nothing of it; the cache is then sized to hold every kept prompt;
- every live sequence advances by one token per `llama_decode`, each with its own sampler chain seeded
  from its request, across records, up to `n_seq_max` sequences and the KV cells available;
- the score line is forced per sequence exactly as in `LlamaEngine`: the started answer is dropped from
  that sequence's cache, the prefix is decoded, and a grammar sampler (first in its chain) admits only
  valid scores.

The engine knows nothing of records or scores: requests in, generations out, in request order.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from grm_cli.engine.base import ContextOverflow, EngineStats, Generation, GenerationRequest, budget
from grm_cli.engine.chunks import ContextOwner, DecodeError, decode_sequence
from grm_cli.engine.kvplan import WaveGroup, common_prefix, group_shared, kept_round_cells, round_cells, wave_cells
from grm_cli.engine.llama import LlamaEngine, captured_stderr
from grm_cli.errors import ModelError

ROOT_SEQ = 0
FitLayers = Callable[[int], int]  # KV cells -> GPU layers to load with (--n-gpu-layers auto)


@dataclass
class _Seq:
    """One sample being generated."""

    index: int  # position in the caller's request list
    req: GenerationRequest
    seq_id: int
    prompt_len: int
    group: "_Group"
    started: float
    chain: int = 0  # llama_sampler pointer
    pos: int = 0  # next position to write
    pending: list[int] = field(default_factory=list)  # tokens to decode for this sequence next step
    tokens: list[int] = field(default_factory=list)  # sampled free tokens
    piece_ends: list[int] = field(default_factory=list)  # byte length of the free text after each token
    data: bytearray = field(default_factory=bytearray)  # free text bytes
    phase: str = "free"  # "free" -> ("tail") -> "done"
    kept: str = ""  # free text kept before the forced prefix
    tail_text: str = ""
    tail_tokens: int = 0
    forced: bool = False
    finish: str = "length"

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")


@dataclass(eq=False)  # identity: two groups may hold equal fields
class _Group:
    """Samples of one distinct prompt: they share its KV cells until they diverge."""

    tokens: list[int]
    members: list[int]  # request indexes
    reserved: int = 0
    live: int = 0  # own live samples + live groups that copied their prompt prefix from this one
    seqs: list[int] = field(default_factory=list)  # sequence ids of its live samples (any holds the prompt)
    lender: "_Group | None" = None  # the group whose prompt cells this one shares beyond the root
    sample_cells: int = 0  # the part of `reserved` its samples' budgets take (the rest: its own prompt cells)
    kept_id: int | None = None  # the sequence holding its prompt once its samples are done
    logits: object = None  # the prompt's last-token logits (numpy), so a kept prompt is not decoded again
    keep: bool = False  # a request asked for its prompt to be kept after this call


class BatchedLlamaEngine(ContextOwner):
    """Many sequences in one llama.cpp context; same interface and outputs as `LlamaEngine`."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_seq_max: int = 32,
        kv_cells: int | None = None,
        n_threads_batch: int | None = None,
        fit_layers: FitLayers | None = None,
        **load,
    ):
        """`load`: how the weights are loaded, exactly LlamaEngine's keywords (n_gpu_layers, n_threads,
        kv_type, flash_attn, use_mmap, use_mlock, verbose, lora_path, lora_scale).
        kv_cells: a fixed cache size (requests wait for cells); None: sized to the work at the first call.
        n_threads_batch: threads for prompt evaluation (default: n_threads); n_threads decodes.
        fit_layers: `--n-gpu-layers auto` decided once the cache size is known: called with the cells
        about to be allocated, it returns the GPU layers, and the weights are reloaded with them."""
        from grm_cli.native import lib

        self._c = lib
        self._model_path, self._load, self._fit_layers = model_path, dict(load), fit_layers
        # The high-level object loads the weights (shared, not copied) and knows the chat template;
        # its own context is kept tiny since generation happens in the context below.
        self.base = LlamaEngine(model_path, n_ctx=256, **load)
        self.name, self.path, self.n_ctx_train = self.base.name, self.base.path, self.base.n_ctx_train
        self.n_ctx = n_ctx  # per sequence: prompt + generation, as for LlamaEngine
        most = lib.llama_max_parallel_sequences()
        self.n_seq_max = max(2, min(n_seq_max, most))
        self.n_keep = max(0, min(self.n_seq_max, most - self.n_seq_max))  # prompts kept after their samples
        self.n_batch = 2048
        threads = load.get("n_threads") or max(1, os.cpu_count() or 1)
        self.threads = (threads, n_threads_batch or threads)  # (decode, prompt evaluation)
        self.kv_fixed = kv_cells is not None
        self.kv_cells = 0  # until a context exists
        self.ctx = None
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._root: list[int] = []
        self._kept: list[_Group] = []  # oldest first
        self._keep_ids: list[int] = []
        self._held = 0  # cells reserved beyond the root: live groups and kept prompts
        self._piece = ctypes.create_string_buffer(256)
        self.stats = EngineStats(prompt_evaluated=0, prompt_seconds=0.0, decode_seconds=0.0)
        if kv_cells:
            self._make_context(kv_cells)

    def _make_context(self, cells: int) -> None:
        """(Re)create the generation context with `cells` KV cells; what it held is gone (the root too)."""
        lib = self._c
        if self._fit_layers is not None:  # --n-gpu-layers auto, now that the cache size is known
            layers = self._fit_layers(cells)
            self._fit_layers = None
            if layers != self.base.n_gpu_layers:
                self.base = LlamaEngine(self._model_path, n_ctx=256, **{**self._load, "n_gpu_layers": layers})
        if self.ctx:
            lib.llama_free(self.ctx)
            self.ctx = None
        self._root = []
        self._kept, self._held = [], 0
        self._keep_ids = list(range(self.n_seq_max + self.n_keep - 1, self.n_seq_max - 1, -1))
        kv_type, flash_attn, verbose = (self._load.get(k, d) for k, d in (("kv_type", "f16"), ("flash_attn", False), ("verbose", False)))
        params = lib.llama_context_default_params()
        params.n_ctx = cells
        params.n_batch = self.n_batch
        params.n_ubatch = 512
        params.n_seq_max = self.n_seq_max + self.n_keep
        params.kv_unified = True  # copied prefixes share cells instead of duplicating them (partial copies need it)
        params.n_threads, params.n_threads_batch = self.threads
        kv_ggml = getattr(lib, f"GGML_TYPE_{kv_type.upper()}")
        params.type_k = params.type_v = kv_ggml
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lib.LLAMA_FLASH_ATTN_TYPE_AUTO
        params.no_perf = True
        with captured_stderr(not verbose):  # llama.cpp warns that a shared cache exceeds the trained context
            self.ctx = lib.llama_init_from_model(self.base.llm.model, params)
        if not self.ctx:
            raise ModelError(f"{self.path}: llama.cpp could not create a context of {cells} KV cells for {self.n_seq_max} sequences (out of memory?): lower --parallel or --ctx")
        self.base.attach_adapter(self.ctx)
        self._vocab = lib.llama_model_get_vocab(self.base.llm.model)
        self.kv_cells = lib.llama_n_ctx(self.ctx)
        self._decode_max = min(self.n_batch, lib.llama_n_batch(self.ctx))  # llama.cpp caps a batch at the cache size
        self._mem = lib.llama_get_memory(self.ctx)

    def _size_for(self, waves: Sequence[WaveGroup], root: list[int], kept: Sequence[Sequence[int]] = ()) -> None:
        """Size the cache to the first wave of this call's work (copying from the prompts already kept),
        or to the prompts it keeps (as many as there are sequences to keep them in) and one wave's samples
        when that is more (grow only: a later smaller call fits). A call that keeps prompts sizes with a
        quarter to spare: later rounds bring response orders not seen yet, and growing the cache loses
        every kept prompt."""
        kept = list(kept)[: self.n_keep]

        def cells(held: Sequence[Sequence[int]], held_cells: int) -> int:
            need = wave_cells(waves, root, held) + held_cells
            return max(need, kept_round_cells(kept, waves, root)) if kept else need

        if self.ctx and (self.kv_fixed or cells([g.tokens for g in self._kept], self._held) <= self.kv_cells):
            return
        need = cells([], 0)  # a new context holds nothing kept
        if kept:
            need += need // 4
        self._make_context(max(round_cells(need), self.kv_cells))

    @property
    def fingerprint(self) -> str:
        return self.base.fingerprint

    # -- the Engine protocol ---------------------------------------------------------------------
    def render(self, messages, assistant_prefix: str = "") -> str:
        return self.base.render(messages, assistant_prefix)

    def count_tokens(self, messages, assistant_prefix: str = "") -> int:
        return self.base.count_tokens(messages, assistant_prefix)

    def generate(self, req: GenerationRequest) -> Generation:
        return self.generate_many([req])[0]

    def generate_many(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """All requests, scheduled over the context's sequences; results in request order."""
        if not requests:
            return []
        started = time.perf_counter()
        try:
            return self._generate_many(requests)
        finally:
            self.stats.wall_seconds += time.perf_counter() - started

    def _generate_many(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        prompts = [self.base._tokens(self.base.render(r.messages, r.assistant_prefix)) for r in requests]
        self.stats.requests += len(requests)
        self.stats.prompt_tokens += sum(map(len, prompts))
        for r, toks in zip(requests, prompts):
            need = len(toks) + budget(r)
            if need > self.n_ctx:
                raise ContextOverflow(len(toks), need, self.n_ctx)
        groups: dict[tuple, _Group] = {}
        for i, toks in enumerate(prompts):
            g = groups.setdefault(tuple(toks), _Group(list(toks), []))
            g.members.append(i)
            g.keep = g.keep or requests[i].keep_prompt
        queue = list(groups.values())
        root = _common_root(prompts)
        self._drop_unusable([g.tokens for g in queue], self._root)
        self._size_for(self._first_wave(queue, requests, root), root, [g.tokens for g in queue if g.keep])
        for g in queue:  # a fixed cache can be too small for one prompt and one of its samples
            if len(g.tokens) + budget(requests[g.members[0]]) > self.kv_cells:
                raise self._too_small(len(g.tokens) + budget(requests[g.members[0]]))
        self._set_root(root)
        results: list[Generation | None] = [None] * len(requests)
        free_ids = list(range(self.n_seq_max - 1, 0, -1))
        active: list[_Seq] = []
        live: list[_Group] = list(self._kept)  # groups whose prompt cells are held: longer prefixes to copy than the root
        try:
            while queue or active:
                # Admit whole groups while sequence ids and KV cells last; part of a group when its prompt
                # is already held (its other samples are running, or it is kept): copying it costs nothing.
                while queue and free_ids:
                    g = queue[0]
                    lender, shared = self._lender(g.tokens, live)
                    if len(free_ids) < min(len(g.members), self.n_seq_max - 1) and shared < len(g.tokens) - 1:
                        break
                    take = g.members[: len(free_ids)]
                    budgets = sum(budget(requests[i]) for i in take)
                    if not self._room_for(len(g.tokens) - shared + budgets, lender, live):
                        if active:
                            break  # wait for running samples to free their cells
                        self._forget_kept(live)  # nothing runs: every kept prompt gives way first
                        lender, shared = self._lender(g.tokens, live)
                    need = len(g.tokens) - shared + budgets
                    if need + len(self._root) > self.kv_cells:
                        raise self._too_small(need + len(self._root))
                    if len(take) < len(g.members):
                        g.members = g.members[len(take):]
                        sub = _Group(g.tokens, take, keep=g.keep)
                    else:
                        queue.pop(0)
                        sub = g
                    sub.reserved, sub.sample_cells = need, budgets
                    self._held += need
                    active.extend(self._admit(sub, requests, free_ids, shared, lender))
                    live.append(sub)
                if not active:
                    continue
                self._step(active)
                done = [s for s in active if s.phase == "done"]
                if done:  # finished samples leave the batch, and free their cells, before the next step
                    active = [s for s in active if s.phase != "done"]
                for s in done:
                    results[s.index] = self._finish(s)
                    g = s.group
                    g.seqs.remove(s.seq_id)
                    if not g.seqs:  # its samples' cells are free; its prompt's stay while borrowed or kept
                        g.reserved -= g.sample_cells
                        self._held -= g.sample_cells
                        g.sample_cells = 0
                        if not self._keep(g, s.seq_id, live):
                            live.remove(g)
                    self._c.llama_memory_seq_rm(self._mem, s.seq_id, -1, -1)
                    free_ids.append(s.seq_id)
                    self._held -= self._release(g)
        except BaseException:
            # the call's reservations are abandoned with it: keep no prompt whose count may be off, and
            # clear every sequence but the root (a sample half admitted holds cells no list knows of)
            self._forget_kept(live)
            for seq_id in range(1, self.n_seq_max + self.n_keep):
                self._c.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            self._held = 0
            raise
        finally:
            for s in active:
                self._free_chain(s)
                self._c.llama_memory_seq_rm(self._mem, s.seq_id, -1, -1)
        return results  # type: ignore[return-value]

    def _too_small(self, cells: int) -> ModelError:
        return ModelError(f"one prompt and its samples need {cells} KV cells, the context has {self.kv_cells}: raise --ctx")

    # -- kept prompts ----------------------------------------------------------------------------
    def _keep(self, g: _Group, seq_id: int, live: list[_Group]) -> bool:
        """g's last sample is done: move its prompt cells to a sequence of their own, so that a later
        request with the same prompt (in this call or the next) copies them. False when not kept (no request
        asked, the same prompt is held already, or no sequence id can be had)."""
        if not (g.keep and self.n_keep) or any(o is not g and o.tokens == g.tokens for o in live):
            return False
        if not self._keep_ids:
            victim = next((k for k in self._kept if k.live == 1), None)
            if victim is None:
                return False
            self._evict(victim, live)
        kid = self._keep_ids.pop()
        self._c.llama_memory_seq_rm(self._mem, kid, -1, -1)
        self._c.llama_memory_seq_cp(self._mem, seq_id, kid, 0, len(g.tokens))
        g.kept_id, g.seqs = kid, [kid]
        g.live += 1  # the kept sequence holds it (the finished sample's release follows)
        self._kept.append(g)
        return True

    def _evict(self, g: _Group, live: list[_Group]) -> None:
        """Drop a kept prompt: its sequence goes, and its cells once nothing else borrows them."""
        self._c.llama_memory_seq_rm(self._mem, g.kept_id, -1, -1)
        self._keep_ids.append(g.kept_id)
        g.kept_id, g.seqs = None, []
        self._kept.remove(g)
        if g in live:
            live.remove(g)
        self._held -= self._release(g)

    def _forget_kept(self, live: list[_Group]) -> None:
        for g in list(self._kept):
            self._evict(g, live)

    def _room_for(self, need: int, lender: "_Group | None", live: list[_Group]) -> bool:
        """Evict kept prompts, oldest first, until `need` more cells fit; the lender (and what it borrows
        from) stays. False when they cannot be made to fit."""
        over = len(self._root) + self._held + need - self.kv_cells
        if over > 0 and sum(k.reserved for k in self._kept if k.live == 1 and k is not lender) < over:
            return False  # (a lower bound: evicting one may free its lender too) keep them rather than lose them for nothing
        while len(self._root) + self._held + need > self.kv_cells:
            victim = next((k for k in self._kept if k.live == 1 and k is not lender), None)
            if victim is None:
                return False
            self._evict(victim, live)
        return True

    def _drop_unusable(self, prompts: list[list[int]], root: list[int]) -> None:
        """At a call's start: kept prompts no prompt of this call can copy more of than the root (as it
        stands) are dropped, so that a cache of past work never crowds out the work at hand."""
        for g in list(self._kept):
            if not any(common_prefix(g.tokens, p) > common_prefix(root, p) for p in prompts):
                self._evict(g, [])

    # -- scheduling ------------------------------------------------------------------------------
    def _first_wave(self, queue: list[_Group], requests: Sequence[GenerationRequest], root: list[int]) -> list[WaveGroup]:
        """The groups the scheduler admits at once (sequence ids permitting): what sizes the cache."""
        free, wave = self.n_seq_max - 1, []
        for g in queue:
            if free < min(len(g.members), self.n_seq_max - 1):
                break
            take = g.members[:free]
            wave.append(WaveGroup(g.tokens, [budget(requests[i]) for i in take]))
            free -= len(take)
        return wave

    def _lender(self, tokens: list[int], live: list[_Group]) -> tuple["_Group | None", int]:
        """Where a prompt's prefix is copied from: the live group sharing the most of it, or the root."""
        best, shared = None, group_shared(tokens, self._root, None)
        for g in live:
            n = group_shared(tokens, self._root, g.tokens)
            if n > shared:
                best, shared = g, n
        return best, shared

    @staticmethod
    def _release(g: "_Group | None") -> int:
        """One holder of g's cells is gone; when none is left its reservation is free (returned), and its
        lender loses a holder in turn."""
        freed = 0
        while g is not None:
            g.live -= 1
            if g.live > 0:
                break
            freed += g.reserved
            g = g.lender
        return freed

    def _set_root(self, common: list[int]) -> None:
        """Sequence 0 holds the prefix every prompt of this call shares (decoded once, kept across calls).
        Kept prompts borrow the root's cells without counting them: those that borrow beyond a shorter
        root go first. A longer root copies what a kept prompt holds of it and decodes only the rest."""
        if common == self._root:
            return
        keep = common_prefix(self._root, common)
        for g in list(self._kept):
            if common_prefix(g.tokens, self._root) > keep:
                self._evict(g, [])
        self._root = self._root[:keep]
        if not self._room_for(len(common) - keep, None, []):
            self._forget_kept([])
        self._c.llama_memory_seq_rm(self._mem, ROOT_SEQ, keep, -1)
        try:
            have = keep
            donor = max(self._kept, key=lambda g: common_prefix(g.tokens, common), default=None)
            if donor is not None and common_prefix(donor.tokens, common) > keep:  # counted twice (its and the root's): over, never under
                have = common_prefix(donor.tokens, common)
                self._c.llama_memory_seq_cp(self._mem, donor.kept_id, ROOT_SEQ, keep, have)
            if len(common) > have:
                self._decode_chunks(ROOT_SEQ, common[have:], have, want_last=False)
        except BaseException:
            self._c.llama_memory_seq_rm(self._mem, ROOT_SEQ, keep, -1)
            raise
        self._root = list(common)

    def _decode_chunks(self, seq_id: int, tokens: list[int], start: int, *, want_last: bool) -> int:
        """Decode one sequence's tokens in batches; returns the batch index of the last token's logits."""
        started = time.perf_counter()
        try:
            return self._decode_prompt(seq_id, tokens, start, want_last=want_last)
        finally:
            self.stats.prompt_evaluated += len(tokens)
            self.stats.prompt_seconds += time.perf_counter() - started

    def _decode_prompt(self, seq_id: int, tokens: list[int], start: int, *, want_last: bool) -> int:
        try:
            return decode_sequence(self._c, self.ctx, self._batch, self._decode_max, seq_id, tokens, start, want_last=want_last)
        except DecodeError as e:
            raise ModelError(f"{e}: the KV cache is full or the batch is invalid; lower --parallel or raise --ctx") from None

    def _decode(self) -> None:
        rc = self._c.llama_decode(self.ctx, self._batch)
        if rc != 0:
            raise ModelError(f"llama_decode failed ({rc}): the KV cache is full or the batch is invalid; lower --parallel or raise --ctx")

    def _admit(self, g: _Group, requests: Sequence[GenerationRequest], free_ids: list[int], shared: int, lender: "_Group | None") -> list[_Seq]:
        """Copy the shared prefix (from the root, or from the lender's prompt: the same record in another
        response order, or the same prompt kept from before), decode the rest of the prompt once, copy it to
        each sample's sequence, and sample their first tokens. A prompt held whole, with its logits, is
        copied and not decoded at all: its samples start exactly as they did the first time."""
        now = time.perf_counter()
        ids = [free_ids.pop() for _ in g.members]
        first = ids[0]
        self._c.llama_memory_seq_rm(self._mem, first, -1, -1)
        whole = lender is not None and lender.logits is not None and lender.tokens == g.tokens
        if whole:
            self._c.llama_memory_seq_cp(self._mem, lender.seqs[0], first, 0, len(g.tokens))
            g.logits = lender.logits
        else:
            if shared:
                self._c.llama_memory_seq_cp(self._mem, lender.seqs[0] if lender else ROOT_SEQ, first, 0, shared)
            idx = self._decode_chunks(first, g.tokens[shared:], shared, want_last=True)
            if g.keep:
                g.logits = self._logits(idx)
        seqs = []
        for req_index, seq_id in zip(g.members, ids):
            if seq_id != first:
                self._c.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
                self._c.llama_memory_seq_cp(self._mem, first, seq_id, -1, -1)
            s = _Seq(req_index, requests[req_index], seq_id, len(g.tokens), g, now, pos=len(g.tokens))
            s.chain = self._chain(s.req.temperature, s.req.seed)
            seqs.append(s)
        g.live, g.seqs = len(seqs), list(ids)
        if lender is not None:  # its prompt cells now hold ours too: its reservation stays until we finish
            g.lender = lender
            lender.live += 1
        for s in seqs:  # all sample from the same logits (the prompt's last token), each with its own seed
            tok = self._sample_logits(s.chain, g.logits) if whole else self._c.llama_sampler_sample(s.chain, self.ctx, idx)
            self._accept(s, tok)
        return seqs

    def _logits(self, idx: int):
        """A copy of the logits at batch index idx (they are overwritten by the next decode)."""
        import numpy as np

        ptr = self._c.llama_get_logits_ith(self.ctx, idx)
        n_vocab = self._c.llama_vocab_n_tokens(self._vocab)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()

    def _sample_logits(self, chain: int, logits) -> int:
        """llama_sampler_sample on stored logits: the same candidates (every token, in id order), the same
        chain applied, the selected token accepted."""
        import numpy as np

        c = self._c
        n = len(logits)
        data = (c.llama_token_data * n)()
        view = np.ctypeslib.as_array(data).view(np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
        view["id"] = np.arange(n, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        cur = c.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        c.llama_sampler_apply(chain, ctypes.byref(cur))
        if not 0 <= cur.selected < cur.size:
            raise ModelError(f"the sampler selected no token ({cur.selected} of {cur.size})")
        tok = int(cur.data[cur.selected].id)
        c.llama_sampler_accept(chain, tok)
        return tok

    def _step(self, active: list[_Seq]) -> None:
        """One llama_decode advancing every live sequence by its pending token(s)."""
        b = self._batch
        n = 0
        order: list[tuple[_Seq, int]] = []
        for s in active:
            if s.phase == "done" or not s.pending:
                continue
            if n + len(s.pending) > self._decode_max:
                break
            for j, t in enumerate(s.pending):
                b.token[n] = t
                b.pos[n] = s.pos
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = s.seq_id
                b.logits[n] = 1 if j == len(s.pending) - 1 else 0
                s.pos += 1
                n += 1
            order.append((s, n - 1))
            s.pending = []
        if not n:
            return
        started = time.perf_counter()
        b.n_tokens = n
        self._decode()
        for s, idx in order:
            self._accept(s, self._c.llama_sampler_sample(s.chain, self.ctx, idx))
        self.stats.decode_seconds += time.perf_counter() - started
        self.stats.generated_tokens += n

    # -- per-sequence sampling -------------------------------------------------------------------
    def _chain(self, temperature: float, seed: int, grammar: str | None = None) -> int:
        c = self._c
        if not (temperature >= 0 and temperature != float("inf")):
            raise ValueError(f"temperature {temperature}: expected a finite number, 0 or more")
        chain = c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
        if grammar is not None:
            g = c.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
            if not g:
                c.llama_sampler_free(chain)
                raise ValueError("llama.cpp rejected the score grammar")
            c.llama_sampler_chain_add(chain, g)  # first: later samplers must not remove every legal token
        if temperature == 0:
            c.llama_sampler_chain_add(chain, c.llama_sampler_init_greedy())
        else:
            c.llama_sampler_chain_add(chain, c.llama_sampler_init_temp(temperature))
            c.llama_sampler_chain_add(chain, c.llama_sampler_init_dist(seed & 0x7FFFFFFF))
        return chain

    def _free_chain(self, s: _Seq) -> None:
        if s.chain:
            self._c.llama_sampler_free(s.chain)
            s.chain = 0

    def _piece_bytes(self, tok: int) -> bytes:
        n = self._c.llama_token_to_piece(self._vocab, tok, self._piece, len(self._piece), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._c.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, False)
            return buf.raw[:n]
        return self._piece.raw[:n]

    def _accept(self, s: _Seq, tok: int) -> None:
        """Take a sampled token: extend the text, and decide whether the sequence goes on."""
        req = s.req
        if s.phase == "tail":
            s.tail_tokens += 1
            if not self._c.llama_vocab_is_eog(self._vocab, tok):
                s.tail_text += self._piece_bytes(tok).decode("utf-8", "replace")
            if req.tail.is_closed(s.tail_text) or s.tail_tokens >= req.tail.max_tokens or self._c.llama_vocab_is_eog(self._vocab, tok):
                s.phase = "done"
            else:
                s.pending = [tok]
            return
        if self._c.llama_vocab_is_eog(self._vocab, tok):
            s.finish = "stop"
            self._end_free(s)
            return
        s.tokens.append(tok)
        s.data += self._piece_bytes(tok)
        s.piece_ends.append(len(s.data))
        text = _decode_prefix(s.data)
        for stop in req.stop:
            cut = text.find(stop)
            if cut >= 0:
                s.data = bytearray(text[:cut].encode("utf-8"))
                s.finish = "stop"
                s.phase = "done"
                return
        if req.tail is not None and req.tail.is_complete(text):
            s.finish = "answer"
            s.phase = "done"
            return
        if len(s.tokens) >= req.max_tokens:
            s.finish = "length"
            self._end_free(s)
            return
        s.pending = [tok]

    def _end_free(self, s: _Seq) -> None:
        """Free text is over: done, or start the forced answer line for this sequence."""
        req = s.req
        text = s.text()
        if req.tail is None or req.tail.is_complete(text):
            s.phase = "done"
            return
        kept = req.tail.trim(text)
        kept_bytes = kept.encode("utf-8")
        n_keep = 0
        for i, end in enumerate(s.piece_ends):
            if end > len(kept_bytes):
                break
            n_keep = i + 1
        done_bytes = s.piece_ends[n_keep - 1] if n_keep else 0
        rest = kept_bytes[done_bytes:].decode("utf-8", "replace") + req.tail.prefix_for(kept)
        # The cache holds the prompt and the free tokens decoded so far (the last sampled one is not).
        # Keep what the kept text covers, drop the rest, and queue what still needs decoding.
        decoded = s.pos - s.prompt_len
        start = s.prompt_len + min(n_keep, decoded)
        self._c.llama_memory_seq_rm(self._mem, s.seq_id, start, -1)
        s.pos = start
        s.kept = kept
        s.forced = True
        s.pending = s.tokens[decoded:n_keep] + self.base.llm.tokenize(rest.encode("utf-8"), add_bos=False, special=False)
        self._free_chain(s)
        s.chain = self._chain(req.temperature, req.seed + 1, grammar=req.tail.grammar)
        s.phase = "tail"

    def _finish(self, s: _Seq) -> Generation:
        self._free_chain(s)
        free_text = s.text()
        if s.forced:
            text = s.kept + s.req.tail.prefix_for(s.kept) + s.tail_text
            forced, finish = True, "forced"
        else:
            text, forced, finish = free_text, False, s.finish
        return Generation(
            text=text,
            free_text=free_text,
            forced_tail=forced,
            finish_reason=finish,
            prompt_tokens=s.prompt_len,
            completion_tokens=len(s.tokens) + s.tail_tokens,
            seconds=time.perf_counter() - s.started,
        )


def _common_root(prompts: list[list[int]]) -> list[int]:
    """The prefix every prompt of a call shares (the template's instructions), if long enough to matter."""
    common = prompts[0]
    for p in prompts[1:]:
        common = common[: common_prefix(common, p)]
    return list(common) if len(common) >= 16 else []


def _decode_prefix(data: bytearray) -> str:
    """The text of the bytes so far, leaving out an incomplete UTF-8 character at the end."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    return dec.decode(bytes(data), final=False)
