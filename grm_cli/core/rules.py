"""The paper's rules, stated once (Eq. 10, Eq. 11), and the label they judge against.

Scoring, evaluation, meta RM labels, rejective sampling, the principles filter and the RL reward all
call these functions; nothing else decides whether a judgment is right.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import TYPE_CHECKING, Sequence

from grm_cli.errors import InputError

if TYPE_CHECKING:
    from grm_cli.core.records import Record


def record_label(rec: "Record") -> int | None:
    """What the rule judges a record against: the labelled best response's index (n >= 2), or a single
    response's 0/1 `label`; None when the record has no label."""
    return rec.preferred if len(rec.responses) > 1 else rec.label


def label_of(rec: "Record", needed_for: str = "this command") -> int:
    """`record_label`, for work that cannot go on without one: a located error naming the field."""
    label = record_label(rec)
    if label is not None:
        return label
    if len(rec.responses) == 1:
        raise InputError(f'field "label": {needed_for} needs the single response\'s 0/1 label', rec.source, rec.line)
    raise InputError(f'field "preferred" (or "chosen"/"rejected"): {needed_for} needs the labelled best response', rec.source, rec.line)


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


def nearest_int(x: float) -> int:
    """Round half up (0.5 -> 1): Python's round() sends 0.5 to 0, which would bias a 0/1 expected score."""
    return math.floor(x + 0.5)


def single_response_correct(samples: Sequence[Sequence[float] | None], label: int) -> bool:
    """One response with a 0/1 label: Eq. 10 per sample (S_1 == r_1, an expected score taken at its
    nearest integer), and the record is right when more than half of the parsed samples are (an even
    split, or nothing parsed, is wrong)."""
    parsed = [tuple(nearest_int(x) for x in s) for s in samples if s is not None]
    return bool(parsed) and 2 * sum(is_correct(s, label) for s in parsed) > len(parsed)


def label_margin(scores: Sequence[float], best: int) -> float:
    """How far the LABELLED best is ahead of the strongest other response (negative when behind; 0 for
    a single response, whose label is a 0/1 value, not an index). Not `top_lead`: this one asks about
    the label, that one about the vote."""
    if len(scores) < 2:
        return 0
    others = [s for i, s in enumerate(scores) if i != best]
    return scores[best] - max(others) if others else 0


def top_lead(totals: Sequence[float]) -> float | None:
    """How far the vote's top total is ahead of the runner-up (0 on a tie; None for one response)."""
    if len(totals) < 2:
        return None
    ranked = sorted(totals, reverse=True)
    return ranked[0] - ranked[1]


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
