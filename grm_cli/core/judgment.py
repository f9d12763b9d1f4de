"""Turning a model's generated text into a `Judgment`: principles, critique, scores, or a parse error.

The one score parser of the project. Rules (paper §1, App. G): take the LAST `\\boxed{...}` of the
model's own text, require exactly the expected count of integers, each in range; anything else is an
explicit parse error that keeps the raw text. A parse error is never a 0 and never a tie.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_BOXED_START = re.compile(r"\\boxed\s*\{")
_INT = re.compile(r"^[+]?\d+$")
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

    @property
    def ok(self) -> bool:
        return self.scores is not None


def parse_scores(text: str, count: int, lo: int, hi: int) -> tuple[tuple[int, ...] | None, str | None]:
    """(scores, None) from the last \\boxed{} in `text`, or (None, reason)."""
    starts = [m.start() for m in _BOXED_START.finditer(text)]
    if not starts:
        return None, "no \\boxed{...} score line in the output"
    last = _BOXED.match(text, starts[-1])  # the last box counts even when malformed: no fallback to an earlier one
    if last is None:
        return None, "the last \\boxed{...} is not closed or holds nested braces, expected integers"
    inner = last.group(1).strip()
    parts = [p.strip() for p in re.split(r"[,;]|\s+(?=\d)", inner) if p.strip()]
    if not parts:
        return None, "the last \\boxed{} is empty"
    bad = [p for p in parts if not _INT.match(p)]
    if bad:
        return None, f"the last \\boxed{{{inner}}} holds {bad[0]!r}, expected integers"
    values = tuple(int(p) for p in parts)
    if len(values) != count:
        return None, f"the last \\boxed{{{inner}}} holds {len(values)} integers, expected {count}"
    out = [v for v in values if not lo <= v <= hi]
    if out:
        return None, f"the last \\boxed{{{inner}}} has {out[0]} outside {lo}..{hi}"
    return values, None


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
    principles = _section(text, principles_label, [critique_label, scores_label, "\\boxed"])
    critique = _section(text, critique_label, [scores_label, "\\boxed"])
    return Judgment(
        text=text,
        scores=scores,
        error=error,
        principles=principles,
        critique=critique,
        criteria=parse_criteria(principles),
    )


def score_spans(text: str) -> list[tuple[int, int]]:
    """Where each integer of the last \\boxed{...} sits in `text` (start, end offsets): the positions at
    which an expected score reads the model's probabilities. Empty when there is no closed box."""
    starts = [m.end() for m in _BOXED_START.finditer(text)]
    if not starts:
        return []
    end = text.find("}", starts[-1])
    if end < 0:
        return []
    return [(starts[-1] + m.start(), starts[-1] + m.end()) for m in re.finditer(r"\d+", text[starts[-1]:end])]
