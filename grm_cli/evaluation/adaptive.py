"""Adaptive voting measured on a stored run: for each K of the voting@k curve, what `grm score -k K
--adaptive RULE` would have drawn and decided, replayed on the samples a full run stored (samples are seeded
by index, so an adaptive run draws exactly a full run's first ones), beside the full vote of those K.

This is the curve's "samples used" axis: accuracy against the samples actually spent, and how often the
adaptive verdict is the full voting@K verdict (the exact rule: always).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from grm_cli.core.adaptive import Policy, replay, swing
from grm_cli.core.prompt import Template
from grm_cli.core.voting import guided_vote, vote
from grm_cli.evaluation.metrics import accuracy, curve_ks, has_meta
from grm_cli.scoring.results import StoredResult


@dataclass(frozen=True)
class AdaptivePoint:
    k: int
    accuracy: float | None  # the adaptive verdicts, ties broken as `accuracy` breaks them
    full_accuracy: float | None  # the same records voting with all of their first k samples
    agreement: float  # adaptive verdict (winner, or a tie) == the full voting@k verdict
    samples_used: float  # mean samples per record
    saved: float  # share of the k samples per record not drawn
    tokens_saved: float  # share of generated tokens not generated

    def to_json(self) -> dict:
        return {"k": self.k, "accuracy": self.accuracy, "full_accuracy": self.full_accuracy, "agreement": self.agreement,
                "samples_used": self.samples_used, "saved": self.saved, "tokens_saved": self.tokens_saved}


def _verdict(r: StoredResult, m: int, k_meta: int | None):
    s = [x.scores for x in r.samples[:m]]
    v = guided_vote(s, [x.meta_score for x in r.samples[:m]], k_meta, r.n) if k_meta else vote(s, r.n)
    return v.best, v.is_tie, v.totals is None


def adaptive_curve(results: Sequence[StoredResult], policy: Policy, template: Template, *, seed: int = 0) -> list[AdaptivePoint]:
    """Replay `policy` at every K of the curve over labelled multi-response records (with a meta RM's
    ratings stored, on the guided vote with k_meta = K/2, as the meta curve)."""
    labelled = [r for r in results if r.preferred is not None and r.n >= 2]
    if not labelled:
        return []
    meta = has_meta(labelled)
    points = []
    for k in curve_ks(max(len(r.samples) for r in labelled)):
        if k < 2:
            continue
        k_meta = max(1, k // 2) if meta else None
        cut, agree, used, tokens, tokens_full = [], 0, 0, 0, 0
        for r in labelled:
            kk = min(k, len(r.samples))
            scores = [x.scores for x in r.samples[:kk]]
            ratings = [x.meta_score for x in r.samples[:kk]] if meta else None
            m = replay(scores, kk, policy, swing(template, r.n), ratings, k_meta).used
            cut.append(replace(r, samples=r.samples[:m]))
            agree += _verdict(r, m, k_meta) == _verdict(r, kk, k_meta)
            used += m
            tokens += sum(x.completion_tokens for x in r.samples[:m])
            tokens_full += sum(x.completion_tokens for x in r.samples[:kk])
        full = [replace(r, samples=r.samples[: min(k, len(r.samples))]) for r in labelled]
        points.append(AdaptivePoint(
            k,
            accuracy(cut, seed).accuracy if not meta else None,
            accuracy(full, seed).accuracy if not meta else None,
            agree / len(labelled), used / len(labelled), 1 - used / sum(min(k, len(r.samples)) for r in labelled),
            1 - tokens / tokens_full if tokens_full else 0.0,
        ))
    return points
