"""How many KV cells the batched engine needs: one rule, used by the engine to size its cache and by
`grm doctor` and `--n-gpu-layers auto` to count the same cells before loading.

Why a rule and not `4 x --ctx`: the cache holds, for the records in flight, each distinct prompt once
(the prefix every prompt shares once, then each record's query once, then each response order's own
tail) and each sample's own budget (max tokens + forced score line). A fixed multiple of --ctx is too
small for many short records and far too big for a few: on a laptop GPU it decides how many layers fit.
`CellLedger` keeps the same count for a running context: what each prompt in it holds, and which kept
prompts give way. Pure arithmetic: no llama.cpp here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

CELL_ROUND = 256  # llama.cpp pads the attended span to 256 cells; a cache sized to a multiple wastes none
# --parallel when not given. On a CPU every decoded token attends over every live sequence's cells (one
# unified cache), so more sequences soon cost more than they batch; on a GPU a step costs about the same
# for 1 or 64 sequences.
CPU_PARALLEL, GPU_PARALLEL = 16, 64


def round_cells(n: int) -> int:
    return max(CELL_ROUND, -(-n // CELL_ROUND) * CELL_ROUND)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def common_root(prompts: Sequence[Sequence[int]], least: int = 16) -> list[int]:
    """The prefix every prompt of a call shares (the template's instructions), if long enough to matter."""
    common = prompts[0]
    for p in prompts[1:]:
        common = common[: common_prefix(common, p)]
    return list(common) if len(common) >= least else []


@dataclass(frozen=True)
class WaveGroup:
    """One distinct prompt admitted with some of its samples."""

    tokens: Sequence[int]
    budgets: Sequence[int]  # each admitted sample's own cells (base.budget)


def group_shared(tokens: Sequence[int], root: Sequence[int], previous: Sequence[int] | None) -> int:
    """Prompt tokens a group reuses instead of decoding: the call's shared root, or more when the group
    before it (the same record in another response order) holds a longer prefix. The last prompt token
    is always decoded: its logits start sampling."""
    shared = common_prefix(root, tokens)
    if previous is not None:
        shared = max(shared, common_prefix(previous, tokens))
    return min(shared, len(tokens) - 1)


def first_wave(groups: Sequence[tuple[Sequence[int], Sequence[int]]], ids: int) -> list[WaveGroup]:
    """The groups (tokens, each waiting sample's budget) a scheduler with `ids` free sequence ids admits at
    once, in order: whole groups, and the part of the last one that fits. What sizes the cache."""
    free, wave = ids, []
    for tokens, budgets in groups:
        if free < min(len(budgets), ids):
            break
        take = list(budgets[:free])
        wave.append(WaveGroup(tokens, take))
        free -= len(take)
    return wave


def wave_cells(groups: Sequence[WaveGroup], root: Sequence[int], held: Sequence[Sequence[int]] = ()) -> int:
    """Cells a set of groups admitted together occupies: the root once, each group's unshared prompt
    tokens, each sample's budget. What the engine reserves, summed. `held`: prompts the cache holds
    already (kept from an earlier call): a group copies from them too, and their own cells are not counted."""
    total, prev = len(root), None
    for g in groups:
        shared = group_shared(g.tokens, root, prev)
        for h in held:
            shared = max(shared, min(common_prefix(h, g.tokens), len(g.tokens) - 1))
        total += len(g.tokens) - shared + sum(g.budgets)
        prev = g.tokens
    return total


def kept_round_cells(kept: Sequence[Sequence[int]], waves: Sequence[WaveGroup], root: Sequence[int]) -> int:
    """A call whose prompts are kept for a next call (adaptive rounds): every kept prompt held at once
    (the records in flight, each query once), plus the samples of the first wave. Sized smaller, the cache
    would evict the first records' prompts to admit the last ones, or grow at the next round and lose them."""
    return wave_cells([WaveGroup(t, []) for t in kept], root) + sum(sum(w.budgets) for w in waves)


def planned_cells(ctx: int, sequences: int, *, samples: int = 1, new_tokens: int, orders: int = 2) -> int:
    """Before the prompts are known (`grm doctor`, `--n-gpu-layers auto` outside a run): the most a wave
    can hold when every prompt is as long as --ctx allows (ctx - new_tokens): k x (prompt + max tokens +
    score line) per record, a record's samples sharing each of its (at most `orders`) prompts, across the
    records that fill `sequences`."""
    new_tokens = min(new_tokens, ctx - 1)
    records = math.ceil(sequences / max(samples, 1))
    prompts = records * min(orders, max(samples, 1))
    return round_cells(prompts * (ctx - new_tokens) + sequences * new_tokens)


def planned_adaptive_cells(ctx: int, sequences: int, *, k: int, round_size: int, new_tokens: int, orders: int = 2) -> int:
    """`planned_cells` for adaptive voting: records in flight are sized by a round (`round_size` samples each,
    so `sequences / round_size` of them), and each keeps its prompts (up to `orders`, as its k samples
    alternate them) between rounds while the others draw (`kept_round_cells`), on top of a full wave's samples."""
    new_tokens = min(new_tokens, ctx - 1)
    records = math.ceil(sequences / max(round_size, 1))
    prompts = records * min(orders, max(k, 1))
    return round_cells(prompts * (ctx - new_tokens) + sequences * new_tokens)


# -- the ledger of one context's cells ------------------------------------------------------------
@dataclass(eq=False)  # identity: two prompts may hold equal fields
class PromptCells:
    """One distinct prompt's claim on the cache: its own prompt cells past what it copies (from the root,
    or from its lender) and its samples' budgets, held while anything holds them."""

    tokens: list[int]
    reserved: int = 0
    sample_cells: int = 0  # the part of `reserved` its samples' budgets take (the rest: its own prompt cells)
    live: int = 0  # own live samples + prompts that copied their prefix from this one (+1 while kept)
    seqs: list[int] = field(default_factory=list)  # sequence ids that hold its prompt (any of them)
    lender: "PromptCells | None" = None  # the prompt whose cells this one shares beyond the root
    kept_id: int | None = None  # the sequence holding its prompt once its samples are done
    keep: bool = False  # a request asked for its prompt to be kept after this call


class CellLedger:
    """The KV cells one context has promised: the root (the prefix every prompt of a call shares, counted
    as its length), then `held`: each admitted prompt's reservation, until nothing holds it (its samples
    are done, no prompt borrows from it, it is not kept). Kept prompts (`kept`, oldest first, each in a
    sequence of `keep_ids`) give way when cells or sequences are needed: `drop(seq_id)` clears a kept
    sequence in the cache. Counting only: the scheduler does the copies and decodes. Invariants (checked
    in tests/test_kv_ledger.py): `held` is the sum of `reserved` over the prompts with live > 0, and an
    admission never takes the root and `held` past `cells`."""

    def __init__(self, cells: int, keep_ids: Sequence[int] = (), drop: Callable[[int], None] = lambda seq_id: None):
        self.cells = cells
        self.root: list[int] = []
        self.held = 0
        self.kept: list[PromptCells] = []
        self.keep_ids = list(keep_ids)  # free sequence ids for kept prompts (popped from the end)
        self.n_keep = len(self.keep_ids)  # the most prompts kept at once
        self.live: list[PromptCells] = []  # this call's prompts whose cells are held, kept ones included
        self._drop = drop

    # -- a call ----------------------------------------------------------------------------------
    def start_call(self) -> None:
        self.live = list(self.kept)

    def end_call(self) -> None:
        self.live = []

    def abandon(self) -> None:
        """A call failed: its reservations go with it, and no kept prompt whose count may be off stays."""
        self.forget_kept()
        self.held = 0

    def drop_unusable(self, prompts: Sequence[Sequence[int]]) -> None:
        """At a call's start: kept prompts no prompt of this call can copy more of than the root (as it
        stands) are dropped, so that a cache of past work never crowds out the work at hand."""
        for g in list(self.kept):
            if not any(common_prefix(g.tokens, p) > common_prefix(self.root, p) for p in prompts):
                self.evict(g)

    def shorten_root(self, common: Sequence[int]) -> int:
        """Before the root becomes `common`: the part of the old root it keeps (returned) stays; kept
        prompts that borrow beyond it go, and kept prompts give way (oldest first, or all) to the rest.
        The caller decodes the rest and then sets `root`."""
        keep = common_prefix(self.root, common)
        for g in list(self.kept):
            if common_prefix(g.tokens, self.root) > keep:
                self.evict(g)
        self.root = self.root[:keep]
        if not self.room_for(len(common) - keep, None):
            self.forget_kept()
        return keep

    # -- admission -------------------------------------------------------------------------------
    def lender(self, tokens: Sequence[int]) -> tuple[PromptCells | None, int]:
        """Where a prompt's prefix is copied from: the live prompt sharing the most of it, or the root."""
        best, shared = None, group_shared(tokens, self.root, None)
        for g in self.live:
            n = group_shared(tokens, self.root, g.tokens)
            if n > shared:
                best, shared = g, n
        return best, shared

    def room_for(self, need: int, lender: PromptCells | None) -> bool:
        """Evict kept prompts, oldest first, until `need` more cells fit; the lender (and what it borrows
        from) stays. False when they cannot be made to fit."""
        over = len(self.root) + self.held + need - self.cells
        if over > 0 and sum(k.reserved for k in self.kept if k.live == 1 and k is not lender) < over:
            return False  # (a lower bound: evicting one may free its lender too) keep them rather than lose them for nothing
        while len(self.root) + self.held + need > self.cells:
            victim = next((k for k in self.kept if k.live == 1 and k is not lender), None)
            if victim is None:
                return False
            self.evict(victim)
        return True

    def make_room(self, tokens: Sequence[int], sample_cells: int, lender: PromptCells | None, shared: int, *,
                  can_wait: bool) -> tuple[PromptCells | None, int, int] | None:
        """Room for a prompt and its samples: (lender, shared, cells needed), or None to wait for running
        samples. When nothing runs (`can_wait` False) every kept prompt gives way first."""
        if not self.room_for(len(tokens) - shared + sample_cells, lender):
            if can_wait:
                return None
            self.forget_kept()
            lender, shared = self.lender(tokens)
        return lender, shared, len(tokens) - shared + sample_cells

    def reserve(self, g: PromptCells, need: int, sample_cells: int) -> None:
        """g is admitted: it holds `need` cells, `sample_cells` of them for its samples."""
        g.reserved, g.sample_cells = need, sample_cells
        self.held += need
        self.live.append(g)

    def lend(self, g: PromptCells, lender: PromptCells | None, seqs: Sequence[int]) -> None:
        """g's samples hold its prompt in `seqs`; what it copied from the lender stays until g is done."""
        g.live, g.seqs = len(seqs), list(seqs)
        if lender is not None:
            g.lender = lender
            lender.live += 1

    # -- finishing -------------------------------------------------------------------------------
    def sample_done(self, g: PromptCells, seq_id: int) -> int | None:
        """One of g's samples is done (its sequence is about to be cleared; call `release(g)` after). When it
        was the last, the samples' cells are free, and g's prompt moves to a kept sequence if it asked to:
        its id is returned, for the caller to copy the prompt's cells into before clearing `seq_id`."""
        g.seqs.remove(seq_id)
        if g.seqs:
            return None
        g.reserved -= g.sample_cells
        self.held -= g.sample_cells
        g.sample_cells = 0
        kid = self._keep(g)
        if kid is None:
            self.live.remove(g)
        return kid

    def release(self, g: PromptCells | None) -> None:
        """One holder of g's cells is gone; when none is left its reservation is free, and its lender
        loses a holder in turn."""
        while g is not None:
            g.live -= 1
            if g.live > 0:
                break
            self.held -= g.reserved
            g = g.lender

    # -- kept prompts ----------------------------------------------------------------------------
    def _keep(self, g: PromptCells) -> int | None:
        """A kept sequence for g's prompt; None when not kept (no request asked, the same prompt is held
        already, or no sequence id can be had)."""
        if not (g.keep and self.n_keep) or any(o is not g and o.tokens == g.tokens for o in self.live):
            return None
        if not self.keep_ids:
            victim = next((k for k in self.kept if k.live == 1), None)
            if victim is None:
                return None
            self.evict(victim)
        kid = self.keep_ids.pop()
        g.kept_id, g.seqs = kid, [kid]
        g.live += 1  # the kept sequence holds it (the finished sample's release follows)
        self.kept.append(g)
        return kid

    def evict(self, g: PromptCells) -> None:
        """Drop a kept prompt: its sequence goes, and its cells once nothing else borrows them."""
        self._drop(g.kept_id)
        self.keep_ids.append(g.kept_id)
        g.kept_id, g.seqs = None, []
        self.kept.remove(g)
        if g in self.live:
            self.live.remove(g)
        self.release(g)

    def forget_kept(self) -> None:
        for g in list(self.kept):
            self.evict(g)
