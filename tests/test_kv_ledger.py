"""The batched engine's KV-cell ledger (`kvplan.CellLedger`), driven without llama.cpp the way the
scheduler drives it: calls of prompts that share prefixes (a template's root, a record's query), samples
finishing in any order, prompts kept between calls and giving way. What must hold whatever the order:
the ledger never promises more cells than the cache has, it frees a prompt's cells only once nothing
holds or borrows them, its count equals what it holds, and a kept sequence holds exactly its prompt."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from grm_cli.engine.kvplan import CellLedger, PromptCells, WaveGroup, common_prefix, common_root, first_wave, group_shared


class Failure(Exception):
    """A call that fails halfway (a refused sampler, a full cache)."""


class Cache:
    """llama.cpp's unified KV cache as the engine uses it: each sequence a run of cells from position 0;
    a copy shares the source's cells (no new ones), a decode adds cells, a cell is free once no sequence
    holds it."""

    def __init__(self):
        self.seqs: dict[int, list[tuple[int, int]]] = {}  # sequence id -> (cell, token) by position
        self._next = 0

    def rm(self, seq_id: int, p0: int = -1) -> None:
        self.seqs[seq_id] = self.seqs.get(seq_id, [])[: max(p0, 0)]

    def cp(self, src: int, dst: int, p0: int = 0, p1: int | None = None) -> None:
        have = self.seqs.get(dst, [])
        assert len(have) == p0, "the engine copies onto the end of what a sequence holds"
        self.seqs[dst] = have + self.seqs[src][p0:p1]

    def decode(self, seq_id: int, tokens) -> None:
        for t in tokens:
            self.seqs.setdefault(seq_id, []).append((self._next, t))
            self._next += 1

    def tokens(self, seq_id: int) -> list[int]:
        return [t for _, t in self.seqs.get(seq_id, [])]

    def used(self) -> int:
        return len({c for cells in self.seqs.values() for c, _ in cells})


ROOT = 0


class Sim:
    """The scheduler's use of the ledger (engine/batched.py: `_generate_many`, `_set_root`, `_admit`), on
    a model of the cache; each sample decodes its whole budget as soon as it is admitted (the most it holds)."""

    def __init__(self, cells: int, n_ids: int, n_keep: int):
        self.n_ids, self.n_keep = n_ids, n_keep
        self.all_keep_ids = set(range(n_ids + n_keep - 1, n_ids - 1, -1))
        self.cache = Cache()
        self.dropped: list[int] = []
        self.ledger = CellLedger(cells, sorted(self.all_keep_ids, reverse=True), drop=self._drop)
        self.groups: list[PromptCells] = []  # every prompt admitted and not abandoned

    def _drop(self, seq_id: int) -> None:
        self.dropped.append(seq_id)
        self.cache.rm(seq_id)

    # -- what must hold at any time --------------------------------------------------------------
    def check(self) -> None:
        led = self.ledger
        assert all(g.live >= 0 for g in self.groups)
        assert led.held == sum(g.reserved for g in self.groups if g.live > 0)  # the count is what is held
        assert self.cache.used() <= len(led.root) + led.held  # and no cell is occupied that it does not count
        for g in self.groups:  # a prompt that holds cells keeps its lender's held (it borrows them)
            if g.live > 0 and g.lender is not None:
                assert g.lender.live > 0
        ids = [g.kept_id for g in led.kept]
        assert len(ids) == len(set(ids)) <= self.n_keep
        assert set(ids).isdisjoint(led.keep_ids) and set(ids) | set(led.keep_ids) == self.all_keep_ids
        for g in led.kept:  # a kept sequence holds exactly its prompt
            assert g.seqs == [g.kept_id] and self.cache.tokens(g.kept_id) == g.tokens and g.live >= 1
        assert all(not self.cache.seqs.get(i) for i in led.keep_ids)

    def check_between_calls(self) -> None:
        """Nothing runs: what holds cells is the kept prompts and what they borrow from, nothing else."""
        self.check()
        reach, todo = set(), list(self.ledger.kept)
        while todo:
            g = todo.pop()
            if id(g) not in reach:
                reach.add(id(g))
                todo += [g.lender] if g.lender is not None else []
        assert {id(g) for g in self.groups if g.live > 0} == reach
        assert self.ledger.live == []
        assert all(not self.cache.seqs.get(i) for i in range(1, self.n_ids))
        assert self.cache.tokens(ROOT) == self.ledger.root

    # -- one engine call -------------------------------------------------------------------------
    def set_root(self, root: list[int]) -> None:
        led, cache = self.ledger, self.cache
        if root == led.root:
            return
        keep = led.shorten_root(root)
        assert led.root == root[:keep]
        cache.rm(ROOT, keep)
        have = keep
        donor = max(led.kept, key=lambda g: common_prefix(g.tokens, root), default=None)
        if donor is not None and common_prefix(donor.tokens, root) > keep:
            have = common_prefix(donor.tokens, root)
            cache.cp(donor.kept_id, ROOT, keep, have)
        cache.decode(ROOT, root[have:])
        led.root = list(root)
        assert len(led.root) + led.held <= led.cells  # the root's new cells were made room for
        self.check()

    def admit(self, g: PromptCells, lender: PromptCells | None, shared: int, ids: list[int], budgets: list[int]) -> None:
        cache, first = self.cache, ids[0]
        cache.rm(first)
        if lender is not None and lender.tokens == g.tokens and lender.kept_id is not None:  # held whole, with its logits
            cache.cp(lender.seqs[0], first, 0, len(g.tokens))
        else:
            if shared:
                cache.cp(lender.seqs[0] if lender else ROOT, first, 0, shared)
            cache.decode(first, g.tokens[shared:])
        for seq_id in ids[1:]:
            cache.rm(seq_id)
            cache.cp(first, seq_id)
        for seq_id, budget in zip(ids, budgets):
            cache.decode(seq_id, [-1] * budget)  # its generated text, at the most

    def call(self, requests: list[tuple[list[int], int, bool]], rng: random.Random, fail_at: int | None) -> None:
        """requests: (prompt, sample budget, keep) each; samples finish in `rng`'s order; the call fails
        after its `fail_at`-th admission when given."""
        led, cache = self.ledger, self.cache
        groups: dict[tuple, PromptCells] = {}
        members: dict[int, list[int]] = {}
        for i, (toks, _, keep) in enumerate(requests):
            g = groups.setdefault(tuple(toks), PromptCells(list(toks)))
            members.setdefault(id(g), []).append(i)
            g.keep = g.keep or keep
        queue = list(groups.values())
        led.drop_unusable([g.tokens for g in queue])
        self.check()
        if any(len(g.tokens) + requests[members[id(g)][0]][1] > led.cells for g in queue):
            return  # refused before anything is held (the engine's "raise --ctx")
        self.set_root(common_root([r[0] for r in requests]))
        free_ids = list(range(self.n_ids - 1, 0, -1))
        active: list[tuple[PromptCells, int]] = []
        admitted = 0
        led.start_call()
        try:
            while queue or active:
                while queue and free_ids:
                    g = queue[0]
                    mine = members[id(g)]
                    lender, shared = led.lender(g.tokens)
                    assert shared == max([group_shared(g.tokens, led.root, o.tokens) for o in led.live] + [group_shared(g.tokens, led.root, None)])
                    if len(free_ids) < min(len(mine), self.n_ids - 1) and shared < len(g.tokens) - 1:
                        break
                    take = mine[: len(free_ids)]
                    budgets = sum(requests[i][1] for i in take)
                    room = led.make_room(g.tokens, budgets, lender, shared, can_wait=bool(active))
                    self.check()
                    if room is None:
                        break
                    lender, shared, need = room
                    assert lender is None or lender in led.live  # what it copies from stays
                    if need + len(led.root) > led.cells:
                        raise Failure  # the engine's "one prompt and its samples need N KV cells"
                    if len(take) < len(mine):
                        members[id(g)] = mine[len(take):]
                        sub = PromptCells(g.tokens, keep=g.keep)
                    else:
                        queue.pop(0)
                        sub = g
                    led.reserve(sub, need, budgets)
                    assert len(led.root) + led.held <= led.cells  # never more than the cache has
                    ids = [free_ids.pop() for _ in take]
                    self.admit(sub, lender, shared, ids, [requests[i][1] for i in take])
                    led.lend(sub, lender, ids)
                    self.groups.append(sub)
                    active += [(sub, seq_id) for seq_id in ids]
                    self.check()
                    if admitted == fail_at:
                        raise Failure  # admitted, then refused (a bad temperature is found when its sampler is made)
                    admitted += 1
                if not active:
                    continue
                rng.shuffle(active)
                cut = rng.randint(1, len(active))
                done, active = active[:cut], active[cut:]
                for g, seq_id in done:
                    kept_id = led.sample_done(g, seq_id)
                    if kept_id is not None:
                        cache.rm(kept_id)
                        cache.cp(seq_id, kept_id, 0, len(g.tokens))
                    cache.rm(seq_id)
                    free_ids.append(seq_id)
                    led.release(g)
                    self.check()
        except Failure:
            led.abandon()
            for seq_id in range(1, self.n_ids + self.n_keep):
                cache.rm(seq_id)
            self.groups = []  # the call's prompts go with it, and nothing is kept: the ledger holds nothing
            assert led.held == 0 and led.kept == [] and set(led.keep_ids) == self.all_keep_ids
        finally:
            led.end_call()


HEADER = list(range(100, 124))  # a template's instructions: the root when every prompt has it


@st.composite
def prompts(draw) -> list[int]:
    head = HEADER[: draw(st.sampled_from([0, 10, 24]))]
    return head + draw(st.lists(st.integers(0, 2), min_size=1, max_size=12))  # a small alphabet: prefixes are shared


@st.composite
def runs(draw):
    pool = draw(st.lists(prompts(), min_size=1, max_size=6))
    request = st.tuples(st.sampled_from(pool), st.integers(1, 24), st.booleans())
    calls = draw(st.lists(st.lists(request, min_size=1, max_size=8), min_size=1, max_size=6))
    fails = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=len(calls), max_size=len(calls)))
    return calls, fails


@settings(max_examples=300, deadline=None)
@given(runs(), st.integers(60, 400), st.integers(2, 6), st.integers(0, 4), st.randoms(use_true_random=False))
def test_the_ledger_counts_what_it_holds_and_never_promises_more_than_the_cache(run, cells, n_ids, n_keep, rng):
    calls, fails = run
    sim = Sim(cells, n_ids, n_keep)
    for requests, fail_at in zip(calls, fails):
        sim.call(requests, rng, fail_at)
        sim.check_between_calls()
    held_before = sim.ledger.held
    sim.ledger.forget_kept()  # giving every kept prompt up frees every cell
    assert sim.ledger.held == 0 and sim.ledger.kept == [] and set(sim.ledger.keep_ids) == sim.all_keep_ids
    assert held_before == 0 or sim.dropped


@settings(max_examples=200, deadline=None)
@given(st.lists(prompts(), min_size=1, max_size=6), st.integers(0, 30))
def test_the_lender_is_the_live_prompt_sharing_the_most_and_never_the_last_token(pool, root_len):
    led = CellLedger(10_000)
    led.root = list(HEADER[:root_len])
    led.live = [PromptCells(p) for p in pool[1:]]
    lender, shared = led.lender(pool[0])
    assert shared <= len(pool[0]) - 1 and shared >= min(common_prefix(led.root, pool[0]), len(pool[0]) - 1)
    best = max([group_shared(pool[0], led.root, g.tokens) for g in led.live], default=-1)
    assert (lender is None and shared >= best) or (lender is not None and shared == best > group_shared(pool[0], led.root, None))


def test_a_shorter_root_drops_kept_prompts_that_borrowed_beyond_it():
    """A kept prompt borrowed the old root's cells without counting them: when the root shrinks below what it
    borrowed, it goes (else its cells past the new root would be held and counted nowhere)."""
    a, b, c = HEADER + [0, 1], HEADER + [0, 2], HEADER[:10] + [1]
    sim = Sim(1000, 4, 2)
    sim.call([(a, 4, True), (b, 4, True)], random.Random(0), None)
    sim.check_between_calls()
    assert sim.ledger.root == HEADER + [0] and len(sim.ledger.kept) == 2
    sim.call([(a, 4, True), (c, 4, False)], random.Random(0), None)  # the root is now empty
    sim.check_between_calls()
    assert sim.ledger.root == [] and sim.dropped


def test_a_longer_root_makes_room_for_itself():
    """The root's new cells are counted before they are decoded: kept prompts give way to them."""
    p1, p2 = HEADER + [0], [1, 2, 3]
    sim = Sim(40, 3, 2)
    sim.call([(p1, 4, True), (p2, 4, True)], random.Random(0), None)
    sim.check_between_calls()
    assert sim.ledger.root == [] and sim.ledger.held == 28
    sim.call([(HEADER + [1], 2, False), (HEADER + [2], 2, False)], random.Random(0), None)
    sim.check_between_calls()
    assert sim.ledger.root == HEADER and sim.ledger.kept == []


def test_room_is_made_from_the_oldest_kept_prompts_and_never_from_the_lender():
    """Three kept prompts of 100 cells in a cache of 400 with a root of 20: a prompt needing 150 more
    evicts the oldest that is not its lender, and only as many as it needs; one needing more than all
    of them could free evicts none (they would be lost for nothing)."""
    dropped = []
    led = CellLedger(400, [12, 11, 10], drop=dropped.append)
    led.root = list(range(20))
    kept = []
    for n in range(3):
        g = PromptCells(led.root + [n] * 5, keep=True)
        led.reserve(g, 100, 10)
        led.lend(g, None, [n + 1])
        assert led.sample_done(g, n + 1) == 10 + n
        led.release(g)
        kept.append(g)
    led.end_call()
    assert led.held == 270 and led.kept == kept
    led.start_call()
    assert not led.room_for(400, None) and dropped == []
    assert led.room_for(150, kept[0])
    assert dropped == [11] and led.kept == [kept[0], kept[2]] and led.held == 180  # the oldest but the lender
    led.forget_kept()
    assert led.held == 0 and sorted(led.keep_ids) == [10, 11, 12]


def test_a_borrowed_prompt_stays_until_its_borrower_is_done():
    """The same record in another response order copies the first order's query: the first prompt's
    cells stay held while the second holds them, though the first's samples are done."""
    led = CellLedger(1000)
    a, b = PromptCells([1, 2, 3, 4, 5]), PromptCells([1, 2, 3, 9, 9])
    led.start_call()
    led.reserve(a, 5 + 20, 20)
    led.lend(a, None, [1])
    lender, shared = led.lender(b.tokens)
    assert lender is a and shared == 3
    led.reserve(b, 2 + 10, 10)
    led.lend(b, a, [2])
    assert led.sample_done(a, 1) is None
    led.release(a)
    assert a.live == 1 and led.held == 5 + 12  # a's samples freed theirs; its prompt is borrowed
    assert led.sample_done(b, 2) is None
    led.release(b)
    assert led.held == 0 and a.live == b.live == 0


def test_the_first_wave_and_the_root():
    assert common_root([list(range(20)) + [1], list(range(20)) + [2]]) == list(range(20))
    assert common_root([list(range(10)) + [1], list(range(10)) + [2]]) == []  # too short to matter
    groups = [([1, 2], [5, 5, 5]), ([1, 3], [7, 7]), ([4], [1])]
    assert first_wave(groups, 4) == [WaveGroup([1, 2], [5, 5, 5])]  # the next group does not fit whole
    assert first_wave(groups, 2) == [WaveGroup([1, 2], [5, 5])]  # a group larger than every id: in part
    assert first_wave(groups, 8) == [WaveGroup(t, list(b)) for t, b in groups]
