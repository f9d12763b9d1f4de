"""Turning a model's generated text into a `Judgment`: principles, critique, scores, or a parse error.

The scores come from the one score-line parser (`core.score_line`: the last box, exact count, in range;
a parse error is never a 0 and never a tie); this module adds the sections around it and the criteria.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grm_cli.core.score_line import BOX, parse_scores

_WEIGHT = re.compile(r"\(?\s*weight\s*[:=]?\s*(\d+(?:\.\d+)?)\s*%?\s*\)?", re.IGNORECASE)


@dataclass(frozen=True)
class Criterion:
    """One principle: a criterion specific to the query and its weight in percent (None when unstated)."""

    text: str
    weight: float | None = None


@dataclass(frozen=True)
class Judgment:
    """One sample's verdict. `scores` are in the order the responses were SHOWN; None when unparsed."""

    text: str
    scores: tuple[int, ...] | None
    error: str | None = None
    principles: str | None = None
    critique: str | None = None
    criteria: tuple[Criterion, ...] = field(default_factory=tuple)
    verdict: str | None = None  # the verdict as the judge wrote it ("4", "A"), for protocols other than DeepSeek-GRM

    @property
    def ok(self) -> bool:
        return self.scores is not None


def _section(text: str, start: str, ends: list[str]) -> str | None:
    """The text after the last `start` label up to the first of `ends` that follows it."""
    i = text.rfind(start)
    if i < 0:
        return None
    body = text[i + len(start):]
    cut = min((j for j in (body.find(e) for e in ends if e) if j >= 0), default=len(body))
    value = body[:cut].strip().strip("*").strip()
    return value or None


def parse_criteria(principles: str | None) -> tuple[Criterion, ...]:
    """Split a principles paragraph into criteria with weights: list items, or ';'-separated clauses."""
    if not principles:
        return ()
    lines = [ln.strip() for ln in principles.splitlines() if ln.strip()]
    items = lines if len(lines) > 1 else re.split(r";\s+|\.\s+(?=[A-Z0-9])", principles)
    crits = []
    for item in items:
        item = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", item).strip().rstrip(".;").strip()
        if not item or re.fullmatch(r"\d+", item):  # a list number left over by the '. ' split
            continue
        m = _WEIGHT.search(item)
        weight = float(m.group(1)) if m else None
        name = (_WEIGHT.sub("", item) if m else item).strip().strip(":,-").strip()
        crits.append(Criterion(name or item, weight))
    return tuple(crits)


def parse_judgment(
    text: str,
    count: int,
    lo: int,
    hi: int,
    *,
    principles_label: str = "Specific Criteria:",
    critique_label: str = "Analysis:",
    scores_label: str = "Scores:",
) -> Judgment:
    """Parse the model's own text (any pre-filled principles included, never the prompt)."""
    scores, error = parse_scores(text, count, lo, hi)
    principles = _section(text, principles_label, [critique_label, scores_label, BOX])
    critique = _section(text, critique_label, [scores_label, BOX])
    return Judgment(
        text=text,
        scores=scores,
        error=error,
        principles=principles,
        critique=critique,
        criteria=parse_criteria(principles),
    )
