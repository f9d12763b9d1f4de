"""A judge protocol: how one judge family talks, in its own words.

A protocol owns exactly four things, and nothing above the judgment knows any of them:
- how a record becomes the judge's messages (`render`: its system prompt where it has one, the rubric and
  reference answer where it takes them), for the responses one call shows;
- the grammar of its verdict (`verdict_format`: what an engine forces when a sample ends without one);
- the parser (`parse`: the official parser's rules, which match wins and what counts as a failure);
- how the verdict maps onto grm's judgment: scores per shown response (absolute and listwise protocols),
  or a pick worth one vote (pairwise protocols: 1 for the picked response, 0 for the other; a tie, where
  the protocol has one, gives neither a point).

Shapes: "listwise" judges all of a record's responses in one call (DeepSeek-GRM); "absolute" judges one
response per call, so one sample of an n-response record is n calls; "pairwise" judges two responses in
one call. Everything above (voting with shuffles, adaptive stopping, expected scores, eval, serve) works
on the judgment and is the same for every protocol.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, ClassVar, Literal, Mapping, Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, prompts_dir
from grm_cli.core.records import Record
from grm_cli.errors import InputError
from grm_cli.yaml_file import read_yaml_mapping

Shape = Literal["listwise", "absolute", "pairwise"]

# What a verdict finder returns: (the verdict as written, None, its (start, end) in the text), or
# (None, why it failed, None).
Found = tuple["str | None", "str | None", "tuple[int, int] | None"]


@dataclass(frozen=True)
class TaggedVerdict:
    """A verdict that is one value after a marker, as most judges write it: `[RESULT] 4`, `<score>3</score>`,
    `[[A]]`. It parses with the protocol's own finder (the official parser's rules) and can be forced:
    `prefix` is appended when a sample ends without a verdict, then a grammar admits one of `values` and
    the `suffix`. Engines take it through the same `ForcedTail` as the score line."""

    prefix: str  # appended before the value when forcing: e.g. "\n[RESULT] "
    values: tuple[str, ...]  # the verdicts as written: "1".."5", "A", "B"
    find: Callable[[str], Found]  # the official parser's rule over the judge's whole answer
    suffix: str = ""  # written after the value when forcing: e.g. "</score>", "]]"
    markers: tuple[str, ...] = ()  # where a started verdict begins (trimmed before forcing); default: the prefix
    opening: Callable[[str], str] | None = None  # the prefix for a given kept text, where it depends on it

    @property
    def max_tokens(self) -> int:
        """Tokens the forced rest may take: one per byte of the longest value and the suffix, at worst
        (a vocabulary without the marker's pieces spells it byte by byte), and a little room."""
        return max(len(v.encode()) for v in self.values) + len(self.suffix.encode()) + 4

    def parse(self, text: str) -> tuple[str | None, str | None]:
        value, error, _ = self.find(text)
        return value, error

    def span(self, text: str) -> tuple[int, int] | None:
        return self.find(text)[2]

    def _alternatives(self) -> list[str]:
        return sorted(self.values, key=lambda v: (-len(v), v))  # longest first: "10" before "1"

    def grammar(self) -> str:
        """GBNF for what follows the prefix: one allowed value, then the suffix."""
        alts = " | ".join(_gbnf_literal(v) for v in self._alternatives())
        tail = f" {_gbnf_literal(self.suffix)}" if self.suffix else ""
        return f"root ::= ({alts}){tail}\n"

    def regex(self) -> str:
        return "(?:" + "|".join(re.escape(v) for v in self._alternatives()) + ")" + re.escape(self.suffix)

    def is_complete(self, text: str) -> bool:
        """Whether `text` already holds a verdict the official parser reads (checked after every token)."""
        return self.find(text)[0] is not None

    def trim(self, text: str) -> str:
        """Drop a started but unfinished verdict (from its last marker on)."""
        cut = len(text)
        for marker in self.markers or (self.prefix.strip(),):
            i = text.rfind(marker)
            if i >= 0:
                cut = min(cut, i)
        return text[:cut].rstrip()

    def is_closed(self, forced_rest: str) -> bool:
        if self.suffix:
            return forced_rest.endswith(self.suffix)
        return forced_rest in self.values

    def answer(self, server_text: str) -> str:
        """The forced rest from a server's continuation: after the last marker it repeats, up to the suffix."""
        mark = self.prefix.strip()
        if mark and mark in server_text:
            server_text = server_text[server_text.rfind(mark) + len(mark):]
        server_text = server_text.lstrip()
        if self.suffix:
            j = server_text.find(self.suffix)
            return server_text[: j + len(self.suffix)] if j >= 0 else server_text
        for v in self._alternatives():
            if server_text.startswith(v):
                return v
        return server_text


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Protocol(ABC):
    """One judge family's protocol. Subclasses set the class attributes and implement render/verdict/parse."""

    name: ClassVar[str]
    title: ClassVar[str]  # the judge and mode, for people
    source: ClassVar[str]  # where the words come from: repository and file (or model card), version
    licence: ClassVar[str]
    shape: ClassVar[Shape]
    scale: ClassVar[tuple[int, int]]  # a verdict's scores: (lo, hi); pairwise (0, 1): a pick
    ties: ClassVar[bool] = False  # pairwise: whether the judge may call a tie
    requires: ClassVar[tuple[str, ...]] = ()  # record fields it cannot judge without ("rubric", "reference")
    uses: ClassVar[tuple[str, ...]] = ()  # record fields it shows when present
    judges: ClassVar[str] = ""  # which released models speak it
    principles: ClassVar[bool] = False  # whether it has DeepSeek-GRM's principles step (modes, given principles, hints)
    chat_template: ClassVar[str | None] = None  # the chat layout its judge was trained on, for a GGUF that carries none

    # -- what a subclass provides -------------------------------------------------------------------
    @abstractmethod
    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        """The messages of one call showing the record's responses `shown` (record indices, in the order shown)."""

    @abstractmethod
    def verdict_format(self, n_shown: int):
        """What a call's answer must end with: a `TaggedVerdict` (or the score line, for DeepSeek-GRM)."""

    @abstractmethod
    def parse(self, text: str, n_shown: int) -> Judgment:
        """The judge's answer to one call, by the official parser's rules. Scores in the SHOWN order."""

    # -- shared --------------------------------------------------------------------------------------
    def for_record(self, rec: Record) -> "Protocol":
        """This protocol as it judges `rec`: a protocol whose scale comes from the record (Flow-Judge's
        rubric) returns a copy bound to it; the others are the same for every record."""
        return self

    @property
    def responses_range(self) -> tuple[int, int]:
        if self.shape == "pairwise":
            return 2, 2
        return 1, 16

    @property
    def min_responses(self) -> int:
        return self.responses_range[0]

    @property
    def max_responses(self) -> int:
        return self.responses_range[1]

    @property
    def score_min(self) -> int:
        return self.scale[0]

    @property
    def score_max(self) -> int:
        return self.scale[1]

    @property
    def swing(self) -> float:
        """The most one sample can move the difference of two responses' totals (adaptive voting)."""
        lo, hi = self.scale
        return float(hi - lo)

    def calls(self, order: Sequence[int]) -> list[tuple[int, ...]]:
        """How one sample of a record, responses in `order`, splits into calls: each call's shown responses."""
        if self.shape == "absolute":
            return [(i,) for i in sorted(order)]
        return [tuple(order)]

    def check(self, rec: Record) -> None:
        """Before any generation: the record has what this protocol needs (FILE:LINE, naming the field)."""
        n = len(rec.responses)
        lo, hi = self.responses_range
        if not lo <= n <= hi:
            if self.shape == "pairwise":
                raise InputError(
                    f'field "responses": protocol "{self.name}" judges a pair (exactly 2 responses), the record has {n}; '
                    "use an absolute protocol for more, or split the record into pairs", rec.source, rec.line)
            raise InputError(f'field "responses": protocol "{self.name}" takes {lo} to {hi} responses, the record has {n}', rec.source, rec.line)
        for fld in self.requires:
            if getattr(rec, fld) is None:
                raise InputError(
                    f'missing field "{fld}": protocol "{self.name}" needs {_FIELD_WORDS[fld]} (give it in the record, or --{fld} FILE for every record)',
                    rec.source, rec.line)
        if rec.label is not None:
            raise InputError(f'field "label": a 0/1 label is judged with the deepseek-grm protocol and --template single, not protocol "{self.name}"', rec.source, rec.line)

    def candidates(self, n_shown: int) -> tuple[str, ...]:
        """The verdicts an expected score weighs, as written at the verdict's position."""
        return tuple(self.verdict_format(n_shown).values)

    def spans(self, text: str, n_shown: int) -> list[tuple[int, int]]:
        """Where the verdict sits in the answer (where an expected score reads the probabilities)."""
        span = self.verdict_format(n_shown).span(text)
        return [span] if span else []

    def expected(self, dists: Sequence[Mapping[str, float]], n_shown: int) -> tuple[float, ...]:
        """Expected scores (shown order) from the probability of each verdict at each span: an absolute or
        listwise verdict's value times its probability; a pairwise pick's probability (a tie gives neither)."""
        if self.shape == "pairwise":
            (dist,) = dists
            return tuple(float(dist.get(v, 0.0)) for v in self.pick_values)
        return tuple(sum(float(v) * p for v, p in d.items()) for d in dists)

    # -- pairwise helpers -------------------------------------------------------------------------
    pick_values: ClassVar[tuple[str, ...]] = ("A", "B")  # pairwise: the verdict naming the first, the second shown
    tie_value: ClassVar[str | None] = None

    def pick_scores(self, value: str) -> tuple[int, int]:
        """A pairwise verdict as scores in the shown order: the pick gets 1; a tie gives neither a point."""
        if value == self.tie_value:
            return (0, 0)
        return (1, 0) if value == self.pick_values[0] else (0, 1)

    def describe(self) -> dict:
        lo, hi = self.scale
        return {
            "name": self.name, "title": self.title, "shape": self.shape,
            "scale": "pick A/B" + (" or tie" if self.ties else "") if self.shape == "pairwise" else f"{lo}-{hi}",
            "requires": list(self.requires), "uses": list(self.uses), "judges": self.judges,
            "source": self.source, "licence": self.licence,
        }


_FIELD_WORDS = {"rubric": "a score rubric", "reference": "a reference answer"}


@lru_cache(maxsize=None)
def protocol_texts(name: str) -> dict:
    """A protocol's words, shipped as data with their source and licence: prompts/protocols/NAME.yaml."""
    path = prompts_dir() / "protocols" / f"{name}.yaml"
    data = read_yaml_mapping(path, "protocol texts")
    for key in ("source", "licence"):
        if key not in data:
            raise InputError(f'missing key "{key}": every shipped prompt text names where it comes from', str(path))
    return data
