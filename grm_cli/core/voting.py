"""Voting over k samples (Eq. 14): sum each response's pointwise scores, in the record's order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from grm_cli.core.rules import argmax_unique, tied_best, top_lead


def to_record_order(shown_scores: Sequence[int], order: Sequence[int]) -> tuple[int, ...]:
    """Map scores given in the shown order back to the record's order (order[j] = record index at position j)."""
    out = [0] * len(order)
    for pos, idx in enumerate(order):
        out[idx] = shown_scores[pos]
    return tuple(out)


def judge_to_scores(best_shown: int, order: Sequence[int]) -> tuple[int, ...]:
    """LLM-as-a-judge: the named (1-based, shown order) response gets 1, the others 0, in record order."""
    return tuple(1 if idx == order[best_shown - 1] else 0 for idx in range(len(order)))


@dataclass(frozen=True)
class Verdict:
    """The voted result of one record."""

    totals: tuple[int, ...] | None  # summed scores per response (record order); None if no sample parsed
    best: int | None  # argmax; None on a tie or when nothing parsed
    tied: tuple[int, ...]  # indices sharing the top total (len > 1 means a tie)
    margin: int | None  # rules.top_lead: top total minus the runner-up (0 on a tie); None for 1 response or nothing parsed
    votes: int  # samples that parsed and were summed
    unparsed: int  # samples that could not be parsed (excluded, never counted as 0)

    @property
    def is_tie(self) -> bool:
        return len(self.tied) > 1


def vote(samples: Sequence[Sequence[int] | None], n: int) -> Verdict:
    """Sum the parsed samples' scores (already in record order); unparsed samples (None) are left out."""
    parsed = [s for s in samples if s is not None]
    unparsed = len(samples) - len(parsed)
    if not parsed:
        return Verdict(None, None, (), None, 0, unparsed)
    for s in parsed:
        if len(s) != n:
            raise ValueError(f"a sample has {len(s)} scores for {n} responses")
    # fsum: float (expected) scores total the same whatever the order they are added in
    totals = tuple(math.fsum(s[i] for s in parsed) if any(isinstance(s[i], float) for s in parsed) else sum(s[i] for s in parsed) for i in range(n))
    tied = tuple(tied_best(totals))
    return Verdict(totals, argmax_unique(totals), tied, top_lead(totals), len(parsed), unparsed)


def meta_keep(scores: Sequence[Sequence[int] | None], meta: Sequence[float | None], k_meta: int) -> tuple[bool, ...]:
    """Meta-RM-guided voting (paper §4): keep the k_meta parsed samples the meta RM rates highest (equal
    ratings: the earlier sample). Unparsed samples are never kept: they have no scores to sum."""
    if k_meta < 1:
        raise ValueError(f"k_meta {k_meta}: expected at least 1")
    ranked = sorted((i for i, s in enumerate(scores) if s is not None and meta[i] is not None), key=lambda i: (-meta[i], i))
    chosen = set(ranked[:k_meta])
    return tuple(i in chosen for i in range(len(scores)))


def guided_vote(scores: Sequence[Sequence[int] | None], meta: Sequence[float | None], k_meta: int, n: int) -> Verdict:
    """Eq. 14 over the samples `meta_keep` chooses; unparsed samples still count as unparsed."""
    keep = meta_keep(scores, meta, k_meta)
    return vote([s for s, kept in zip(scores, keep) if kept or s is None], n)
