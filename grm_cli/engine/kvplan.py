"""How many KV cells the batched engine needs: one rule, used by the engine to size its cache and by
`grm doctor` and `--n-gpu-layers auto` to count the same cells before loading.

Why a rule and not `4 x --ctx`: the cache holds, for the records in flight, each distinct prompt once
(the prefix every prompt shares once, then each record's query once, then each response order's own
tail) and each sample's own budget (max tokens + forced score line). A fixed multiple of --ctx is too
small for many short records and far too big for a few: on a laptop GPU it decides how many layers fit.
Pure arithmetic: no llama.cpp here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

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
