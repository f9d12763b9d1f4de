"""Adaptive voting: stop sampling a record once the rest of its k samples cannot (or almost surely will
not) change its verdict, and spend what is saved where votes are close.

The verdict is what Eq. 14 decides: which response has the unique top total (or that the top is tied).
After m of K samples, a record stops when

- `exact`: the leader's lead over every rival exceeds what the K - m samples still to come could take
  away, each moving the difference of two totals by at most the template's swing (score_max - score_min;
  1 for a judge template, whose samples are one-hot). The stopped verdict is then the voting@K verdict,
  whatever the remaining samples would have said. With a meta RM, the bound is taken over every way the
  remaining samples could enter the kept top k_meta and push out the lowest-rated kept ones.
- `stat`: the chance that the remaining samples overturn the lead is below `risk`, under the assumption
  that a record's samples are independent draws from one distribution (they are: each has its own seed and
  response order). The difference of the leader's and a rival's score per sample is modelled as normal,
  with its mean and spread estimated from the samples so far (the spread shrunk towards a prior of a third of
  the swing, worth two samples, so that four identical samples do not look certain) and Student-t's small-sample widening; the
  flip risk is the predictive probability that the lead plus the remaining differences ends at or below 0,
  maximised over how many of the remaining samples parse, with the risk split over the rivals.

Records with one response are never stopped early (their result is the total, not a choice).
This module is pure: scoring (live rounds) and evaluation (replaying stored samples) both call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, Sequence

from grm_cli.core.prompt import Template
from grm_cli.core.voting import meta_keep, vote

Rule = Literal["exact", "stat"]
RULES = ("exact", "stat")
DEFAULT_RISK = 0.01
PRIOR_WEIGHT = 2.0  # pseudo-samples of the spread prior
PRIOR_SPREAD = 3.0  # the prior spread of a per-sample difference: the swing / this (tuned on simulated streams, tests/test_adaptive.py)


def swing(template: Template, n: int) -> float:
    """The most one sample can move the difference of two responses' totals (a template's range, or a
    judge protocol's: a pairwise pick moves it by 1)."""
    if hasattr(template, "shape"):
        return template.swing
    lo, hi = (0, 1) if template.kind == "judge" else template.score_range(n)
    return float(hi - lo)


@dataclass(frozen=True)
class Policy:
    """How a run samples adaptively: the rule, its risk, and the round sizes."""

    rule: Rule
    risk: float = DEFAULT_RISK
    first_round: int = 4
    round_size: int = 2

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"adaptive rule {self.rule!r}: expected one of {', '.join(RULES)}")
        if not 0.0 < self.risk < 0.5:
            raise ValueError(f"adaptive risk {self.risk}: expected between 0 and 0.5")
        if self.first_round < 1 or self.round_size < 1:
            raise ValueError("adaptive rounds need at least one sample each")

    def next_round(self, used: int, k: int) -> int:
        """How many samples the next round draws for a record that has used `used` of k."""
        return max(0, min(k - used, self.first_round if used == 0 else self.round_size))


def _leader(totals: Sequence[float]) -> int | None:
    top = max(totals)
    leaders = [i for i, t in enumerate(totals) if t == top]
    return leaders[0] if len(leaders) == 1 else None


def exact_settled(samples: Sequence[Sequence[float] | None], remaining: int, swing_: float) -> bool:
    """Plain vote: no way of filling the remaining samples changes which response wins (or that one does)."""
    v = vote(samples, len(next((s for s in samples if s is not None), ())) or 1)
    if v.totals is None or len(v.totals) < 2:
        return remaining == 0
    if remaining == 0:
        return True
    lead = v.margin
    return v.best is not None and lead > remaining * swing_


def exact_settled_guided(samples: Sequence[Sequence[float] | None], ratings: Sequence[float | None], k_meta: int, remaining: int, swing_: float) -> bool:
    """Meta-RM-guided vote: for every number j of remaining samples that could enter the final top k_meta
    (each pushing out the lowest-rated kept one), the leader still wins against every rival."""
    if remaining == 0:
        return True
    keep = meta_keep(samples, ratings, k_meta)
    kept = sorted((i for i, k in enumerate(keep) if k), key=lambda i: (-ratings[i], i))  # best-rated first
    if not kept:
        return False
    n = len(samples[kept[0]])
    if n < 2:
        return False
    totals = [sum(samples[i][r] for i in kept) for r in range(n)]
    leader = _leader(totals)
    if leader is None:
        return False
    # candidates the final kept set can hold: the parsed samples so far, best-rated first, then new ones
    parsed = sorted((i for i, s in enumerate(samples) if s is not None and ratings[i] is not None), key=lambda i: (-ratings[i], i))
    for rival in range(n):
        if rival == leader:
            continue
        diffs = [samples[i][leader] - samples[i][rival] for i in parsed]
        for j in range(0, min(remaining, k_meta) + 1):
            old = diffs[: max(0, k_meta - j)]
            if sum(old) - j * swing_ <= 0:
                return False
    return True


def _t_quantile(z: float, dof: float) -> float:
    """Student-t quantile from the normal one (Cornish-Fisher expansion; close for dof >= 2)."""
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def flip_risk(diffs: Sequence[float], lead: float, remaining: int, swing_: float) -> float:
    """Predictive probability that `lead` plus the remaining samples' differences ends at or below 0."""
    if remaining == 0:
        return 0.0 if lead > 0 else 1.0
    m = len(diffs)
    if m == 0:
        return 1.0
    mean = sum(diffs) / m
    var_emp = sum((d - mean) ** 2 for d in diffs) / (m - 1) if m > 1 else 0.0
    prior = (swing_ / PRIOR_SPREAD) ** 2
    var = ((m - 1) * var_emp + PRIOR_WEIGHT * prior) / (m - 1 + PRIOR_WEIGHT)
    dof = m - 1 + PRIOR_WEIGHT
    sd = math.sqrt(var)
    worst = 0.0
    for q in range(1, remaining + 1):  # q of the remaining samples parse
        spread = sd * math.sqrt(q * (1 + q / m))
        # P(lead + D_q <= 0), D_q ~ q*mean + spread*T: find the t-score of the flip point
        t = (lead + q * mean) / spread
        worst = max(worst, _t_tail(t, dof))
    return worst


def _t_tail(t: float, dof: float) -> float:
    """P(T <= -t) for Student-t, by inverting the quantile expansion with bisection on the normal scale."""
    nd = NormalDist()
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _t_quantile(mid, dof) < t:
            lo = mid
        else:
            hi = mid
    return 1.0 - nd.cdf((lo + hi) / 2)


def stat_settled(samples: Sequence[Sequence[float] | None], remaining: int, swing_: float, risk: float) -> bool:
    """The flip risk of the current leader, over every rival (risk split between them), is below `risk`."""
    if exact_settled(samples, remaining, swing_):
        return True
    parsed = [s for s in samples if s is not None]
    if len(parsed) < 2 or len(parsed[0]) < 2:
        return False
    n = len(parsed[0])
    totals = [sum(s[r] for s in parsed) for r in range(n)]
    leader = _leader(totals)
    if leader is None:
        return False
    share = risk / (n - 1)
    for rival in range(n):
        if rival != leader:
            diffs = [s[leader] - s[rival] for s in parsed]
            if flip_risk(diffs, totals[leader] - totals[rival], remaining, swing_) >= share:
                return False
    return True


def settled(policy: Policy, samples: Sequence[Sequence[float] | None], remaining: int, swing_: float,
            ratings: Sequence[float | None] | None = None, k_meta: int | None = None) -> bool:
    """Whether a record may stop: by the policy's rule, on the plain or the meta-RM-guided vote."""
    if remaining == 0:
        return True
    if not samples or len(next((s for s in samples if s is not None), ())) < 2:
        return False
    if k_meta is not None and ratings is not None:
        if exact_settled_guided(samples, ratings, k_meta, remaining, swing_):
            return True
        if policy.rule == "exact":
            return False
        keep = meta_keep(samples, ratings, k_meta)
        # the statistical rule on the guided vote: the kept samples are the draws the verdict sums
        return stat_settled([s for s, k in zip(samples, keep) if k], min(remaining, k_meta), swing_, policy.risk)
    if policy.rule == "exact":
        return exact_settled(samples, remaining, swing_)
    return stat_settled(samples, remaining, swing_, policy.risk)


def closeness(samples: Sequence[Sequence[float] | None], swing_: float) -> float:
    """How close a record's vote is (lower: closer), to hand a budget's rounds to the closest first:
    the lead over the runner-up in units of the spread m samples can have."""
    parsed = [s for s in samples if s is not None]
    if not parsed or len(parsed[0]) < 2:
        return 0.0
    totals = sorted((sum(s[r] for s in parsed) for r in range(len(parsed[0]))), reverse=True)
    return (totals[0] - totals[1]) / (swing_ * math.sqrt(len(parsed)))


@dataclass(frozen=True)
class Replay:
    """An adaptive run replayed on stored samples (in their sample order): how many it used, and why."""

    used: int
    stopped_by: str | None  # the rule's name when it stopped before k, else None


def replay(samples: Sequence[Sequence[float] | None], k: int, policy: Policy, swing_: float,
           ratings: Sequence[float | None] | None = None, k_meta: int | None = None) -> Replay:
    """What `grm score -k K --adaptive RULE` would have drawn, given the first K samples a full run stored
    (samples are seeded by index, so an adaptive run draws exactly these, in this order)."""
    k = min(k, len(samples))
    used = 0
    while used < k:
        used += policy.next_round(used, k)
        if used < k and settled(policy, samples[:used], k - used, swing_, ratings[:used] if ratings is not None else None, k_meta):
            return Replay(used, policy.rule)
    return Replay(k, None)
