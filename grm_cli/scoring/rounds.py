"""Adaptive voting's rounds (`grm score -k K --adaptive RULE [--budget N]`): draw each record's samples a
round at a time, all records' rounds in one engine call (a batching engine keeps its batch full), and stop a
record when `core.adaptive` says its vote is settled.

With a budget (samples for the chunk), every record gets its first round; the rounds after it go to the
records whose votes are closest first, until the budget is spent. The scheduler knows nothing of prompts
or engines: `draw` turns (item, first sample index, count) requests into samples, `score_of` reads what a
sample votes with, and `rate` (with a meta RM) rates new samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from grm_cli.core.adaptive import Policy, closeness, settled


@dataclass
class RecordRounds:
    """One record's samples so far, their meta ratings (by sample index), and why it stopped."""

    item: object
    n: int
    swing: float
    samples: list = field(default_factory=list)
    ratings: dict = field(default_factory=dict)
    done: bool = False
    stopped_by: str | None = None  # the rule, or "budget", when it stopped before k


Draw = Callable[[Sequence[tuple[object, int, int]]], list[list]]  # [(item, first index, count)] -> samples per request


def run_rounds(states: Sequence[RecordRounds], draw: Draw, policy: Policy, k: int, first_sample: int, score_of: Callable[[object], object],
               *, rate: Callable[[RecordRounds, list], list] | None = None, k_meta: int | None = None, allowance: int | None = None) -> int:
    """Sample every state until it is settled, has k samples, or the allowance is spent; returns samples drawn."""
    drawn = 0
    first = True
    while True:
        active = [s for s in states if not s.done]
        if not active:
            return drawn
        if not first and allowance is not None:
            active.sort(key=lambda s: closeness([score_of(x) for x in s.samples], s.swing))
            left = allowance - drawn
            chosen = []
            for s in active:
                size = policy.next_round(len(s.samples), k)
                if size <= left:
                    chosen.append(s)
                    left -= size
            for s in active:
                if s not in chosen:
                    s.done, s.stopped_by = True, "budget"
            active = chosen
            if not active:
                return drawn
        requests = [(s.item, first_sample + len(s.samples), policy.next_round(len(s.samples), k)) for s in active]
        for s, new in zip(active, draw(requests)):
            drawn += len(new)
            if rate is not None:
                s.ratings.update(zip((x.index for x in new), rate(s, new)))
            s.samples.extend(new)
            remaining = k - len(s.samples)
            if remaining <= 0:
                s.done = True
                continue
            scores = [score_of(x) for x in s.samples]
            ratings = [s.ratings.get(x.index) for x in s.samples] if rate is not None else None
            if s.n >= 2 and settled(policy, scores, remaining, s.swing, ratings, k_meta):
                s.done, s.stopped_by = True, policy.rule
        first = False
