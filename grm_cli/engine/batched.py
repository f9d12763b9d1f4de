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
  last-token logits, in a sequence of its own once its samples are done (up to --parallel of them),
  until the cells are needed or a call comes that cannot use it: the next round's samples of that
  prompt copy it whole and decode nothing of it; the cache is then sized to hold every kept prompt;
- the cells every prompt holds, and which kept prompts give way, are counted by `kvplan.CellLedger`;
- every live sequence advances by one token per `llama_decode`, each with its own sampler chain seeded
  from its request, across records, up to `n_seq_max` sequences and the KV cells available;
- the score line is forced per sequence exactly as in `LlamaEngine` (`stream.py`).

The engine knows nothing of records or scores: requests in, generations out, in request order.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from grm_cli.engine.base import ContextOverflow, EngineBase, EngineStats, Generation, GenerationRequest, budget
from grm_cli.engine.kvplan import CellLedger, PromptCells, WaveGroup, common_prefix, common_root, first_wave, kept_round_cells, round_cells, wave_cells
from grm_cli.engine.model import Model
from grm_cli.engine.stream import SampleStream
from grm_cli.errors import ModelError

ROOT_SEQ = 0
FitLayers = Callable[[int], int]  # KV cells -> GPU layers to load with (--n-gpu-layers auto)
_FULL = "the KV cache is full or the batch is invalid; lower --parallel or raise --ctx"


@dataclass(eq=False)  # identity: two groups may hold equal fields
class _Group(PromptCells):
    """Samples of one distinct prompt: they share its KV cells until they diverge."""

    members: list[int] = field(default_factory=list)  # request indexes
    logits: object = None  # the prompt's last-token logits (numpy), so a kept prompt is not decoded again


class BatchedLlamaEngine(EngineBase):
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
        """`load`: how the weights are loaded, exactly `Model`'s keywords (n_gpu_layers, n_threads,
        kv_type, flash_attn, use_mmap, use_mlock, verbose, lora_path, lora_scale, chat_template).
        kv_cells: a fixed cache size (requests wait for cells); None: sized to the work at the first call.
        n_threads_batch: threads for prompt evaluation (default: n_threads); n_threads decodes.
        fit_layers: `--n-gpu-layers auto` decided once the cache size is known: called with the cells
        about to be allocated, it returns the GPU layers, and the weights are reloaded with them."""
        from grm_cli.native import max_parallel_sequences

        self._model_path, self._load, self._fit_layers = model_path, dict(load), fit_layers
        # The weights, vocabulary and chat template; generation happens in the context below (the
        # high-level Llama's own context, which nothing here uses, is kept tiny).
        self.model = Model(model_path, n_ctx=256, **load)
        self.name, self.path, self.n_ctx_train = self.model.name, self.model.path, self.model.n_ctx_train
        self.n_ctx = n_ctx  # per sequence: prompt + generation, as for LlamaEngine
        most = max_parallel_sequences()
        self.n_seq_max = max(2, min(n_seq_max, most))
        self.n_keep = max(0, min(self.n_seq_max, most - self.n_seq_max))  # prompts kept after their samples
        self.n_batch = 2048
        threads = load.get("n_threads") or max(1, os.cpu_count() or 1)
        self.threads = (threads, n_threads_batch or threads)  # (decode, prompt evaluation)
        self.kv_fixed = kv_cells is not None
        self.ctx = None  # the native.Context, once sized
        self.ledger = CellLedger(0)  # what the context's cells are promised to (none until it exists)
        self.stats = EngineStats(prompt_evaluated=0, prompt_seconds=0.0, decode_seconds=0.0)
        if kv_cells:
            self._make_context(kv_cells)

    @property
    def kv_cells(self) -> int:
        return self.ledger.cells

    @property
    def base(self):
        """The old name of `model` (tests/test_protocol_families.py still reads `base.llm`)."""
        return self.model

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    def _make_context(self, cells: int) -> None:
        """(Re)create the generation context with `cells` KV cells; what it held is gone (the root too)."""
        from grm_cli.native import Context

        if self._fit_layers is not None:  # --n-gpu-layers auto, now that the cache size is known
            layers = self._fit_layers(cells)
            self._fit_layers = None
            if layers != self.model.n_gpu_layers:
                self.model = Model(self._model_path, n_ctx=256, **{**self._load, "n_gpu_layers": layers})
        self.close()
        self.ledger = CellLedger(0)  # nothing is held while the new context is made (it may fail)
        kv_type, flash_attn, verbose = (self._load.get(k, d) for k, d in (("kv_type", "f16"), ("flash_attn", False), ("verbose", False)))
        self.ctx = Context(self.model.native, n_ctx=cells, n_batch=self.n_batch, n_ubatch=512, n_seq_max=self.n_seq_max + self.n_keep,
                           threads=self.threads, kv_unified=True, kv_type=kv_type, flash_attn=bool(flash_attn), verbose=verbose,
                           failure=f"{self.path}: llama.cpp could not create a context of {cells} KV cells for {self.n_seq_max} sequences (out of memory?): lower --parallel or --ctx")
        keep_ids = range(self.n_seq_max + self.n_keep - 1, self.n_seq_max - 1, -1)
        self.ledger = CellLedger(self.ctx.n_ctx, keep_ids, drop=self.ctx.seq_rm)
        self._decode_max = min(self.n_batch, self.ctx.n_batch)  # llama.cpp caps a batch at the cache size

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

        if self.ctx and (self.kv_fixed or cells([g.tokens for g in self.ledger.kept], self.ledger.held) <= self.kv_cells):
            return
        need = cells([], 0)  # a new context holds nothing kept
        if kept:
            need += need // 4
        self._make_context(max(round_cells(need), self.kv_cells))

    # -- the Engine protocol ---------------------------------------------------------------------
    def render(self, messages, assistant_prefix: str = "") -> str:
        return self.model.render(messages, assistant_prefix)

    def count_tokens(self, messages, assistant_prefix: str = "") -> int:
        return len(self.model.tokens(messages, assistant_prefix))

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
        prompts = [self.model.tokens(r.messages, r.assistant_prefix) for r in requests]
        self.stats.requests += len(requests)
        self.stats.prompt_tokens += sum(map(len, prompts))
        for r, toks in zip(requests, prompts):
            need = len(toks) + budget(r)
            if need > self.n_ctx:
                raise ContextOverflow(len(toks), need, self.n_ctx)
        groups: dict[tuple, _Group] = {}
        for i, toks in enumerate(prompts):
            g = groups.setdefault(tuple(toks), _Group(list(toks)))
            g.members.append(i)
            g.keep = g.keep or requests[i].keep_prompt
        queue = list(groups.values())
        root = common_root(prompts)
        self.ledger.drop_unusable([g.tokens for g in queue])
        wave = first_wave([(g.tokens, [budget(requests[i]) for i in g.members]) for g in queue], self.n_seq_max - 1)
        self._size_for(wave, root, [g.tokens for g in queue if g.keep])
        for g in queue:  # a fixed cache can be too small for one prompt and one of its samples
            if len(g.tokens) + budget(requests[g.members[0]]) > self.kv_cells:
                raise self._too_small(len(g.tokens) + budget(requests[g.members[0]]))
        self._set_root(root)
        results: list[Generation | None] = [None] * len(requests)
        free_ids = list(range(self.n_seq_max - 1, 0, -1))
        active: list[SampleStream] = []
        ledger, ctx = self.ledger, self.ctx
        ledger.start_call()  # the prompts held already (kept): longer prefixes to copy than the root
        try:
            while queue or active:
                # Admit whole groups while sequence ids and KV cells last; part of a group when its prompt
                # is already held (its other samples are running, or it is kept): copying it costs nothing.
                while queue and free_ids:
                    g = queue[0]
                    lender, shared = ledger.lender(g.tokens)
                    if len(free_ids) < min(len(g.members), self.n_seq_max - 1) and shared < len(g.tokens) - 1:
                        break
                    take = g.members[: len(free_ids)]
                    budgets = sum(budget(requests[i]) for i in take)
                    room = ledger.make_room(g.tokens, budgets, lender, shared, can_wait=bool(active))
                    if room is None:
                        break  # wait for running samples to free their cells
                    lender, shared, need = room
                    if need + len(ledger.root) > self.kv_cells:
                        raise self._too_small(need + len(ledger.root))
                    if len(take) < len(g.members):
                        g.members = g.members[len(take):]
                        sub = _Group(g.tokens, members=take, keep=g.keep)
                    else:
                        queue.pop(0)
                        sub = g
                    ledger.reserve(sub, need, budgets)
                    active.extend(self._admit(sub, requests, free_ids, shared, lender))
                if not active:
                    continue
                self._step(active)
                done = [s for s in active if s.phase == "done"]
                if done:  # finished samples leave the batch, and free their cells, before the next step
                    active = [s for s in active if s.phase != "done"]
                for s in done:
                    results[s.index] = s.result()
                    kept_id = ledger.sample_done(s.group, s.seq_id)
                    if kept_id is not None:  # its prompt's cells move to a sequence of their own
                        ctx.seq_rm(kept_id)
                        ctx.seq_cp(s.seq_id, kept_id, 0, len(s.group.tokens))
                    ctx.seq_rm(s.seq_id)
                    free_ids.append(s.seq_id)
                    ledger.release(s.group)
        except BaseException:
            # the call's reservations are abandoned with it: keep no prompt whose count may be off, and
            # clear every sequence but the root (a sample half admitted holds cells no list knows of)
            ledger.abandon()
            for seq_id in range(1, self.n_seq_max + self.n_keep):
                ctx.seq_rm(seq_id)
            raise
        finally:
            ledger.end_call()
            for s in active:
                s.close()
                ctx.seq_rm(s.seq_id)
        return results  # type: ignore[return-value]

    def _too_small(self, cells: int) -> ModelError:
        return ModelError(f"one prompt and its samples need {cells} KV cells, the context has {self.kv_cells}: raise --ctx")

    # -- scheduling ------------------------------------------------------------------------------
    def _set_root(self, common: list[int]) -> None:
        """Sequence 0 holds the prefix every prompt of this call shares (decoded once, kept across calls).
        Kept prompts borrow the root's cells without counting them: those that borrow beyond a shorter
        root go first. A longer root copies what a kept prompt holds of it and decodes only the rest."""
        ledger = self.ledger
        if common == ledger.root:
            return
        keep = ledger.shorten_root(common)
        self.ctx.seq_rm(ROOT_SEQ, keep, -1)
        try:
            have = keep
            donor = max(ledger.kept, key=lambda g: common_prefix(g.tokens, common), default=None)
            if donor is not None and common_prefix(donor.tokens, common) > keep:  # counted twice (its and the root's): over, never under
                have = common_prefix(donor.tokens, common)
                self.ctx.seq_cp(donor.kept_id, ROOT_SEQ, keep, have)
            if len(common) > have:
                self._decode_chunks(ROOT_SEQ, common[have:], have, want_last=False)
        except BaseException:
            self.ctx.seq_rm(ROOT_SEQ, keep, -1)
            raise
        ledger.root = list(common)

    def _decode_chunks(self, seq_id: int, tokens: list[int], start: int, *, want_last: bool) -> int:
        """Decode one sequence's tokens in batches; returns the batch index of the last token's logits."""
        from grm_cli.native import DecodeError

        started = time.perf_counter()
        try:
            return self.ctx.decode_sequence(seq_id, tokens, start, chunk=self._decode_max, want_last=want_last)
        except DecodeError as e:
            raise ModelError(f"{e}: {_FULL}") from None
        finally:
            self.stats.prompt_evaluated += len(tokens)
            self.stats.prompt_seconds += time.perf_counter() - started

    def _admit(self, g: _Group, requests: Sequence[GenerationRequest], free_ids: list[int], shared: int, lender: "_Group | None") -> list[SampleStream]:
        """Copy the shared prefix (from the root, or from the lender's prompt: the same record in another
        response order, or the same prompt kept from before), decode the rest of the prompt once, copy it to
        each sample's sequence, and sample their first tokens. A prompt held whole, with its logits, is
        copied and not decoded at all: its samples start exactly as they did the first time."""
        now = time.perf_counter()
        ctx = self.ctx
        ids = [free_ids.pop() for _ in g.members]
        first = ids[0]
        ctx.seq_rm(first)
        whole = lender is not None and lender.logits is not None and lender.tokens == g.tokens
        if whole:
            ctx.seq_cp(lender.seqs[0], first, 0, len(g.tokens))
            g.logits = lender.logits
        else:
            if shared:
                ctx.seq_cp(lender.seqs[0] if lender else ROOT_SEQ, first, 0, shared)
            idx = self._decode_chunks(first, g.tokens[shared:], shared, want_last=True)
            if g.keep:
                g.logits = ctx.logits(idx).copy()  # the next decode overwrites them
        seqs = []
        for req_index, seq_id in zip(g.members, ids):
            if seq_id != first:
                ctx.seq_rm(seq_id)
                ctx.seq_cp(first, seq_id)
            s = SampleStream(req_index, requests[req_index], seq_id, len(g.tokens), g, now, self.model, ctx, pos=len(g.tokens))
            s.start()
            seqs.append(s)
        self.ledger.lend(g, lender, ids)  # a lender's prompt cells now hold ours too: its reservation stays until we finish
        for s in seqs:  # all sample from the same logits (the prompt's last token), each with its own seed
            s.accept(s.chain.sample_logits(g.logits) if whole else s.chain.sample(ctx, idx))
        return seqs

    def _step(self, active: list[SampleStream]) -> None:
        """One llama_decode advancing every live sequence by its pending token(s)."""
        from grm_cli.native import DecodeError

        b = self.ctx.batch
        b.clear()
        order: list[tuple[SampleStream, int]] = []
        for s in active:
            if s.phase == "done" or not s.pending:
                continue
            if b.n + len(s.pending) > self._decode_max:
                break
            for j, t in enumerate(s.pending):
                b.add(t, s.pos, s.seq_id, j == len(s.pending) - 1)
                s.pos += 1
            order.append((s, b.n - 1))
            s.pending = []
        n = b.n
        if not n:
            return
        started = time.perf_counter()
        try:
            self.ctx.decode(b)
        except DecodeError as e:
            raise ModelError(f"{e}: {_FULL}") from None
        for s, idx in order:
            s.accept(s.chain.sample(self.ctx, idx))
        self.stats.decode_seconds += time.perf_counter() - started
        self.stats.generated_tokens += n
