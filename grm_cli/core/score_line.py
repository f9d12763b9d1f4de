"""The score line, `Scores: \\boxed{7, 3}`: every fact about its format lives here.

The paper's GRM ends each judgment with its scores in a box (App. G). This module owns how that line is
read (the LAST box of the model's own text, exactly the expected count of integers, each in range; a
parse error is never a 0 and never a tie), where its integers sit (for expected scores), and how an
engine may force it: the prefix to append, a GBNF grammar and a regex (for servers with guided decoding)
that admit only valid lines, when a forced line is finished, and how a started line is trimmed. Engines
never see this format: they get a `ForcedTail` built from a `ScoreLine`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOX = "\\boxed"  # the box's command; the parser also accepts spaces before its brace
_BOX_START = re.compile(r"\\boxed\s*\{")
_BOX = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_INT = re.compile(r"^[+]?\d+$")
_SPLIT = re.compile(r"[,;]|\s+(?=\d)")


def parse_scores(text: str, count: int, lo: int, hi: int) -> tuple[tuple[int, ...] | None, str | None]:
    """(scores, None) from the last score box in `text`, or (None, reason)."""
    starts = [m.start() for m in _BOX_START.finditer(text)]
    if not starts:
        return None, f"no {BOX}{{...}} score line in the output"
    last = _BOX.match(text, starts[-1])  # the last box counts even when malformed: no fallback to an earlier one
    if last is None:
        return None, f"the last {BOX}{{...}} is not closed or holds nested braces, expected integers"
    inner = last.group(1).strip()
    parts = [p.strip() for p in _SPLIT.split(inner) if p.strip()]
    if not parts:
        return None, f"the last {BOX}{{}} is empty"
    bad = [p for p in parts if not _INT.match(p)]
    if bad:
        return None, f"the last {BOX}{{{inner}}} holds {bad[0]!r}, expected integers"
    values = tuple(int(p) for p in parts)
    if len(values) != count:
        return None, f"the last {BOX}{{{inner}}} holds {len(values)} integers, expected {count}"
    out = [v for v in values if not lo <= v <= hi]
    if out:
        return None, f"the last {BOX}{{{inner}}} has {out[0]} outside {lo}..{hi}"
    return values, None


def score_spans(text: str) -> list[tuple[int, int]]:
    """Where each integer of the last score box sits in `text` (start, end offsets): the positions at
    which an expected score reads the model's probabilities. Empty when there is no closed box."""
    starts = [m.end() for m in _BOX_START.finditer(text)]
    if not starts:
        return []
    end = text.find("}", starts[-1])
    if end < 0:
        return []
    return [(starts[-1] + m.start(), starts[-1] + m.end()) for m in re.finditer(r"\d+", text[starts[-1]:end])]


def _values_by_length(lo: int, hi: int) -> list[str]:
    # longest first, so that "10" is tried before "1" where an alternation is ordered
    return sorted((str(v) for v in range(lo, hi + 1)), key=lambda s: (-len(s), s))


@dataclass(frozen=True)
class ScoreLine:
    """The score line one judgment must end with: `count` integers in lo..hi after `label`."""

    count: int
    lo: int
    hi: int
    label: str = "Scores:"

    @property
    def prefix(self) -> str:
        """What an engine appends to force the line; the model writes only the integers and the brace."""
        return f"\n{self.label} {BOX}{{"

    @property
    def max_tokens(self) -> int:
        """Tokens the forced rest may take: a few per integer and separator, and the brace."""
        return 4 * self.count + 8

    def parse(self, text: str) -> tuple[tuple[int, ...] | None, str | None]:
        return parse_scores(text, self.count, self.lo, self.hi)

    def grammar(self) -> str:
        """GBNF for what follows the prefix: `count` integers in range, comma-separated, then '}'."""
        alts = " | ".join(f'"{v}"' for v in _values_by_length(self.lo, self.hi))
        body = ' ", " '.join(["num"] * self.count)
        return f'root ::= {body} "}}"\nnum ::= {alts}\n'

    def regex(self) -> str:
        """The same language as `grammar` as a regular expression, for servers that take `guided_regex`
        (vLLM, SGLang): the exact count, each integer in range."""
        num = "(?:" + "|".join(_values_by_length(self.lo, self.hi)) + ")"
        return ", ".join([num] * self.count) + r"\}"

    def is_complete(self, text: str) -> bool:
        """Whether `text` already ends its judgment with a valid line (called after every token: the
        cheap test first)."""
        return BOX in text and "}" in text and self.parse(text)[0] is not None

    def trim(self, text: str) -> str:
        """Drop a started but unfinished line, and anything the model invented after it."""
        cut = len(text)
        for marker in (self.label, BOX):
            i = text.rfind(marker)
            if i >= 0:
                cut = min(cut, i)
        return text[:cut].rstrip()

    @staticmethod
    def is_closed(forced_rest: str) -> bool:
        """Whether the forced rest (what followed the prefix) has reached its closing brace."""
        return forced_rest.endswith("}")

    @staticmethod
    def answer(server_text: str) -> str:
        """The forced rest from a server's continuation: a server that started a new turn may repeat the
        label or the box, so keep what follows the last box opening, up to its first '}'."""
        starts = [m.end() for m in _BOX_START.finditer(server_text)]
        if starts:
            server_text = server_text[starts[-1]:]
        j = server_text.find("}")
        return server_text[: j + 1] if j >= 0 else server_text
