"""Prometheus 2's protocols: absolute grading (feedback, then `[RESULT] N`, 1-5, one response per call) and
relative grading (feedback, then `[RESULT] A` or `B`, a pair per call).

Source: github.com/prometheus-eval/prometheus-eval @ dcfb442 (2025-04-24, package prometheus-eval 0.1.20),
libs/prometheus-eval/prometheus_eval: the prompts of prompts.py (verbatim in prompts/protocols/
prometheus-absolute.yaml and prometheus-relative.yaml), filled as judge.py's PrometheusEval fills them
(a system message, then the user message; no pre-filled answer), and the rules of parser.py. Licence:
Apache-2.0 (the repository and the prometheus-7b-v2.0 / prometheus-8x7b-v2.0 weights). Why: Prometheus 2 is
the open judge trained on exactly these prompts, with a user's own score rubric and, optionally, a
reference answer (which picks the template, as get_prompt_template does).

The rubric is required. Absolute: score descriptions (exactly 1 to 5) fill SCORE_RUBRIC_TEMPLATE; a
plain-text rubric is passed as is. Relative: only the criteria; from score descriptions the first line of
the filled template ("[criteria]"), as load_rubric(..., "relative") and the paper's evaluation do.

Parsers (behaviour of parser.py): absolute, one search for a marker and digits anchored at the END of the
answer, then a 1-5 range check; relative, the FIRST marker + A/B that ends a line. Both accept lenient
forms ("Score: 4", "[Response B]"), so checking "has the official parser a verdict yet?" after every
token would stop a sample mid-feedback ("... a score of 4" is a verdict while it is the last thing
written). The forced tail therefore counts a sample as complete only when it ends with a `[RESULT]`
verdict, or (relative) when an earlier verdict's line is closed and can no longer change; a sample that
ends any other way gets "\\n[RESULT] " and a forced value, after dropping a trailing lenient verdict the
relative parser would read before the forced one. The judgment itself is always the official parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render_context
from grm_cli.core.protocols.base import Found, Protocol, TaggedVerdict, protocol_texts
from grm_cli.core.records import Record
from grm_cli.errors import InputError

# The official patterns, with one change that keeps what they match and capture: a whitespace run is one
# quantifier (`\s* (?:\(|\[|\s)*` is `(?:\(|\[|\s)*`, `\s+ \s*` is `\s+`), as the originals take quadratic
# time on long runs and an engine checks after every token.
# parser.py _parse_output_absolute: re.search, IGNORECASE | VERBOSE (no MULTILINE: `$` is the end of the answer).
_ABSOLUTE = re.compile(
    r"""(?P<marker>\[RESULT\]|\[SCORE\]|Score:?|score:?|Result:?|\[Result\]:?|score\s+of)
        (?:\(|\[|\s)* (\d+)
        (?: (?:\)|\]|\s|$) | (?:/\s*5|\s*out\s*of\s*5) )?
        (?:\s*$)""",
    re.IGNORECASE | re.VERBOSE,
)
# parser.py _parse_output_relative: re.search, IGNORECASE | VERBOSE | MULTILINE (`$` ends any line).
_RELATIVE = re.compile(
    r"""(?P<marker>\[RESULT\]|\[RESULT:|\[Response\s|\[Result\](?:\s+Response)?|\[Result:|(?:^|\n)Result:?)
        \s* (A|B) (?:\])? (?:\s*$)""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
PREFIX = "\n[RESULT] "


def find_absolute(text: str) -> Found:
    """The first match of the end-anchored pattern; its integer must be 1-5 (else a failure, no second try)."""
    m = _ABSOLUTE.search(text)
    if m is None:
        return None, "no verdict at the end of the answer (expected '[RESULT] N', N from 1 to 5)", None
    value = int(m.group(2))
    if not 1 <= value <= 5:
        return None, f"verdict {value} is outside 1-5", None
    return str(value), None, m.span(2)


def find_relative(text: str) -> Found:
    """The first marker + A/B (either case) that ends a line; the letter upper-cased."""
    m = _RELATIVE.search(text)
    if m is None:
        return None, "no verdict in the answer (expected '[RESULT] A' or '[RESULT] B' at the end of a line)", None
    return m.group(2).upper(), None, m.span(2)


def _is_result(m: re.Match) -> bool:
    return m.group("marker").upper().startswith("[RESULT")


def _absolute_done(text: str) -> bool:
    m = _ABSOLUTE.search(text)
    return m is not None and _is_result(m) and 1 <= int(m.group(2)) <= 5


def _relative_done(text: str) -> bool:
    m = _RELATIVE.search(text)
    return m is not None and (_is_result(m) or "\n" in text[m.end(2):])


def _relative_cut(text: str) -> str:
    """Drop trailing verdicts the parser would read before a forced one (at most one open line's worth)."""
    while (m := _RELATIVE.search(text)) is not None:
        text = text[: m.start()].rstrip()
    return text


@dataclass(frozen=True)
class PrometheusVerdict(TaggedVerdict):
    """A `[RESULT]` verdict whose official parser is lenient: complete and trimmed by the rules above."""

    done: Callable[[str], bool] | None = None
    cut: Callable[[str], str] | None = None

    def is_complete(self, text: str) -> bool:
        return self.done(text) if self.done else super().is_complete(text)

    def trim(self, text: str) -> str:
        kept = super().trim(text)
        return self.cut(kept) if self.cut else kept


class _Prometheus(Protocol):
    source = "github.com/prometheus-eval/prometheus-eval @ dcfb442 (prometheus-eval 0.1.20): libs/prometheus-eval/prometheus_eval/prompts.py, judge.py, parser.py"
    licence = "Apache-2.0"
    requires = ("rubric",)
    uses = ("reference",)
    judges = "Prometheus 2 (prometheus-7b-v2.0, prometheus-8x7b-v2.0)"

    def _messages(self, rec: Record, **fields: str) -> tuple[dict, ...]:
        if rec.rubric is None:
            self.check(rec)  # names the missing field
        texts = protocol_texts(self.name)
        template = texts["user"] if rec.reference is not None else texts["user_without_reference"]
        content = template.format(instruction=render_context(rec), rubric=self._rubric(rec, texts["score_rubric"]),
                                  reference_answer=rec.reference, **fields)
        return {"role": "system", "content": texts["system"]}, {"role": "user", "content": content}

    def _rubric(self, rec: Record, template: str) -> str:
        raise NotImplementedError


class PrometheusAbsolute(_Prometheus):
    name = "prometheus-absolute"
    title = "Prometheus 2, absolute grading: feedback, then [RESULT] 1-5 on the record's rubric (one response per call)"
    shape = "absolute"
    scale = (1, 5)

    def check(self, rec: Record) -> None:
        super().check(rec)
        self._check_scores(rec)

    def _check_scores(self, rec: Record) -> None:
        """SCORE_RUBRIC_TEMPLATE takes descriptions of scores 1 to 5 (str.format fails without one of them)."""
        scores = rec.rubric.scores if rec.rubric is not None else ()
        if scores and [s for s, _ in scores] != [1, 2, 3, 4, 5]:
            raise InputError(
                f'field "rubric": protocol "{self.name}" grades 1-5 and takes descriptions of exactly scores 1 to 5, '
                f"the rubric describes {', '.join(str(s) for s, _ in scores)}", rec.source, rec.line)

    def _rubric(self, rec: Record, template: str) -> str:
        rubric = rec.rubric
        if rubric.is_text:
            return rubric.criteria
        self._check_scores(rec)
        return template.format(criteria=rubric.criteria, **{f"score{s}_description": d for s, d in rubric.scores})

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        (i,) = shown
        return Prompt(messages=self._messages(rec, response=rec.responses[i]), assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int) -> PrometheusVerdict:
        return PrometheusVerdict(prefix=PREFIX, values=("1", "2", "3", "4", "5"), find=find_absolute, done=_absolute_done)

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, _ = find_absolute(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, (int(value),), None, critique=_feedback(text, _ABSOLUTE), verdict=value)


class PrometheusRelative(_Prometheus):
    name = "prometheus-relative"
    title = "Prometheus 2, relative grading: feedback, then [RESULT] A or B on the record's rubric (a pair per call)"
    shape = "pairwise"
    scale = (0, 1)

    def _rubric(self, rec: Record, template: str) -> str:
        rubric = rec.rubric
        if rubric.is_text:
            return rubric.criteria
        # load_rubric(..., "relative"): the filled SCORE_RUBRIC_TEMPLATE's first line; only "[{criteria}]" feeds it.
        return template.split("\n")[0].format(criteria=rubric.criteria).split("\n")[0]

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        a, b = shown
        messages = self._messages(rec, response_A=rec.responses[a], response_B=rec.responses[b])
        return Prompt(messages=messages, assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int) -> PrometheusVerdict:
        return PrometheusVerdict(prefix=PREFIX, values=self.pick_values, find=find_relative,
                                 done=_relative_done, cut=_relative_cut)

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, _ = find_relative(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, self.pick_scores(value), None, critique=_feedback(text, _RELATIVE), verdict=value)


def _feedback(text: str, pattern: re.Pattern) -> str | None:
    """What precedes the verdict's marker, stripped (parser.py's `feedback`)."""
    m = pattern.search(text)
    return (text[: m.start()].strip() or None) if m else None
