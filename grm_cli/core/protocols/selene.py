"""Atla Selene-1-Mini's protocols: a 1-5 score on a score rubric (one response per call), and a pick of A or B.

Source: github.com/atla-ai/selene-mini @ 1425d20 (2025-02-17), Atla's repository for the model (its README links
the card huggingface.co/AtlaAI/Selene-1-Mini-Llama-3.1-8B): the training templates prompt-templates/*.yaml, filled with
str.format and sent as one user message, and the parser parse_atla_response, as its cookbooks do. The pairwise
prompt without a rubric and its parser are the ones added to RewardBench with Selene Mini's submission
(allenai/reward-bench @ 05a9005, rewardbench/generative.py: Atla_PROMPT, process_judgement). The texts ship
verbatim in prompts/protocols/selene-*.yaml. Licence: Apache-2.0 (both repositories); the weights are apache-2.0
by the card and a Llama-3.1-8B fine-tune. Why: a strong small (8B) open judge, trained on exactly these prompts.

selene-absolute needs a rubric: its criteria and descriptions of scores 1-5 fill the templates' score rubric; a
plain-text rubric stands in that block as written (as the cookbook writes its rubric). A reference answer picks
the with-reference template. Parser: over the answer's stripped non-empty lines, the LAST line starting with
"**Result:**" gives the score, int() of the rest; a Result line int() cannot read fails the whole answer (the
cookbook's try/except). grm adds a range check, 1-5 (the cookbook keeps any integer).

selene-pairwise: with a rubric, the training template (its criteria fill "[{rubric_objective}]", score
descriptions have no place there); without, RewardBench's prompt. Parser (RewardBench): the FIRST
`\\*\\*Result:\\*\\*\\s*(\\w+)`; the word must be A or B (RewardBench scores another word as half a point, grm as a
failed parse). No tie.

Forcing: "\\n\\n**Result:** " then the value, as the format asks. The trim cuts from the FIRST verdict line (not the
last marker), so an earlier unreadable or rival verdict cannot outlive a forced one under the rules above.
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

RESULT = "**Result:**"
REASONING = "**Reasoning:**"
_PICK = re.compile(r"\*\*Result:\*\*\s*(\w+)")  # reward-bench process_judgement, model_modifier "Atla"
SCORES = (1, 2, 3, 4, 5)


def _lines(text: str):
    """(offset, line) for each line as str.split("\\n") gives them."""
    pos = 0
    for raw in text.split("\n"):
        yield pos, raw
        pos += len(raw) + 1


def _first_result_line(text: str) -> int:
    return next((pos for pos, raw in _lines(text) if raw.strip().startswith(RESULT)), -1)


def _first_result(text: str) -> int:
    return text.find(RESULT)


def find_score(text: str) -> Found:
    """parse_atla_response: the last stripped line starting with "**Result:**", int() of the rest with every
    marker removed; any such line int() refuses fails the answer. Then grm's range check. The verdict is the
    score as int() reads it ("+4" -> "4"), its span the text int() read."""
    last = None
    for pos, raw in _lines(text):
        line = raw.strip()
        if not line.startswith(RESULT):
            continue
        rest = line.replace(RESULT, "").strip()
        try:
            score = int(rest)
        except ValueError:
            return None, f'unreadable score {rest[:20]!r} on a "**Result:**" line (the official parser then fails the whole answer)', None
        last = pos, raw, rest, score
    if last is None:
        return None, 'no line starting with "**Result:**" in the answer', None
    pos, raw, rest, score = last
    if score not in SCORES:
        return None, f"score {score} is outside 1-5", None
    j = raw.find(rest, raw.find(RESULT) + len(RESULT))
    return str(score), None, ((pos + j, pos + j + len(rest)) if j >= 0 else None)


def find_pick(text: str) -> Found:
    """RewardBench's Atla parser: the first "**Result:**" and the word after it, which must be A or B."""
    m = _PICK.search(text)
    if m is None:
        return None, 'no "**Result:**" followed by a word in the answer', None
    if m.group(1) not in ("A", "B"):
        return None, f'verdict {m.group(1)[:20]!r} after the first "**Result:**" is neither A nor B', None
    return m.group(1), None, m.span(1)


@dataclass(frozen=True)
class SeleneVerdict(TaggedVerdict):
    """A `**Result:**` verdict, trimmed from the first verdict the parser would look at."""

    first: Callable[[str], int] | None = None  # where the first verdict starts (-1: none)

    def trim(self, text: str) -> str:
        i = self.first(text) if self.first else -1
        return super().trim(text[:i] if i >= 0 else text)


def _critique(text: str, end: int) -> str | None:
    """The judge's reasoning: what precedes the verdict line, without its "**Reasoning:**" label."""
    before = text[:end]
    i = before.find(REASONING)
    before = before[i + len(REASONING):] if i >= 0 else before
    before = before.strip()
    return before.removesuffix(RESULT).rstrip() or None


class SeleneAbsolute(Protocol):
    name = "selene-absolute"
    title = "Atla Selene-1-Mini: reasoning, then a 1-5 score on a score rubric (one response per call)"
    source = "github.com/atla-ai/selene-mini @ 1425d20: prompt-templates/absolute-scoring*.yaml, cookbooks (parse_atla_response)"
    licence = "Apache-2.0 (prompt texts); weights apache-2.0 by the card, a Llama-3.1-8B fine-tune (Llama 3.1 Community License)"
    shape = "absolute"
    scale = (1, 5)
    requires = ("rubric",)
    uses = ("reference",)
    judges = "Selene-1-Mini (Llama-3.1-8B)"

    def check(self, rec: Record) -> None:
        super().check(rec)
        rubric = rec.rubric
        if rubric is not None and not rubric.is_text and tuple(s for s, _ in rubric.scores) != SCORES:
            given = ", ".join(str(s) for s, _ in rubric.scores)
            raise InputError(f'field "rubric": protocol "{self.name}" grades 1-5 and needs a description of each score 1 to 5 '
                             f"(the rubric describes {given}); give all five, or the rubric as a text", rec.source, rec.line)

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        self.check(rec)  # names a missing rubric, or score descriptions that are not 1-5
        (i,) = shown
        texts = protocol_texts(self.name)
        template = texts["user"] if rec.reference is None else texts["user_with_reference"]
        fields = {"user_input": render_context(rec), "assistant_response": rec.responses[i], "reference_response": rec.reference}
        if rec.rubric.is_text:
            template = template.replace(texts["rubric_block"], "{rubric}")
            fields["rubric"] = rec.rubric.criteria
        else:
            fields["rubric_objective"] = rec.rubric.criteria
            fields.update({f"rubric_score_{s}_description": d for s, d in rec.rubric.scores})
        return Prompt(messages=({"role": "user", "content": template.format(**fields)},), assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int) -> SeleneVerdict:
        return SeleneVerdict(prefix="\n\n**Result:** ", values=tuple(map(str, SCORES)), find=find_score, first=_first_result_line)

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_score(text)
        if value is None:
            return Judgment(text, None, error)
        end = text.rfind("\n", 0, span[0]) + 1 if span else len(text)
        return Judgment(text, (int(value),), critique=_critique(text, end), verdict=value)


class SelenePairwise(Protocol):
    name = "selene-pairwise"
    title = "Atla Selene-1-Mini: reasoning, then the better of two responses, A or B (no tie)"
    source = "github.com/atla-ai/selene-mini @ 1425d20: prompt-templates/pairwise.yaml; allenai/reward-bench @ 05a9005: rewardbench/generative.py (Atla)"
    licence = "Apache-2.0 (prompt texts); weights apache-2.0 by the card, a Llama-3.1-8B fine-tune (Llama 3.1 Community License)"
    shape = "pairwise"
    scale = (0, 1)
    uses = ("rubric",)
    judges = "Selene-1-Mini (Llama-3.1-8B)"

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        a, b = (rec.responses[i] for i in shown)
        texts = protocol_texts(self.name)
        fields = {"user_input": render_context(rec), "assistant_response_a": a, "assistant_response_b": b}
        if rec.rubric is None:
            template = texts["user"]
        else:
            template = texts["user_with_rubric"]
            fields["rubric_objective"] = rec.rubric.criteria
        return Prompt(messages=({"role": "user", "content": template.format(**fields)},), assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int) -> SeleneVerdict:
        return SeleneVerdict(prefix="\n\n**Result:** ", values=self.pick_values, find=find_pick, first=_first_result)

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_pick(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, self.pick_scores(value), critique=_critique(text, text.rfind(RESULT, 0, span[0])), verdict=value)
