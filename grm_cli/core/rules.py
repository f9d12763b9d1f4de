"""The paper's rules, stated once (Eq. 10, Eq. 11).

Scoring, evaluation, meta RM labels, rejective sampling and the RL reward all call these functions.
"""

from __future__ import annotations

import hashlib
import random
from typing import Sequence


def argmax_unique(scores: Sequence[float]) -> int | None:
    """Index of the strictly highest score, or None when the top is shared (a tie)."""
    if not scores:
        return None
    top = max(scores)
    winners = [i for i, s in enumerate(scores) if s == top]
    return winners[0] if len(winners) == 1 else None


def tied_best(scores: Sequence[float]) -> list[int]:
    """All indices that share the top score (one index when there is no tie)."""
    if not scores:
        return []
    top = max(scores)
    return [i for i, s in enumerate(scores) if s == top]


def is_correct(scores: Sequence[float] | None, label: int) -> bool:
    """Eq. 10: does a judgment single out the labelled best response?

    n >= 2: `label` is the index of the best response; correct iff its score is strictly above every
    other score (a tie is wrong). n == 1: `label` is the ground-truth score r_1; correct iff S_1 == r_1.
    An unparsed judgment (None) is never correct.
    """
    if scores is None or len(scores) == 0:
        return False
    if len(scores) == 1:
        return scores[0] == label
    if not 0 <= label < len(scores):
        raise ValueError(f"label {label} out of range for {len(scores)} scores")
    return argmax_unique(scores) == label


def rl_reward(scores: Sequence[float] | None, label: int) -> float:
    """Eq. 11: +1 for a correct trajectory, -1 otherwise (no format reward; unparsed is -1)."""
    return 1.0 if is_correct(scores, label) else -1.0


def tie_priority(seed: int, record_id: str, n: int) -> list[int]:
    """A seeded random rank per response (higher wins a tie): the same record always breaks ties alike."""
    digest = hashlib.sha256(f"tie\x00{seed}\x00{record_id}".encode()).digest()
    ranks = list(range(n))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(ranks)
    return ranks


def break_tie(scores: Sequence[float], seed: int, record_id: str) -> int:
    """§5.1: for reported accuracy a tie becomes a random pick among the tied (seeded, so runs repeat)."""
    tied = tied_best(scores)
    if len(tied) == 1:
        return tied[0]
    prio = tie_priority(seed, record_id, len(scores))
    return max(tied, key=lambda i: prio[i])
