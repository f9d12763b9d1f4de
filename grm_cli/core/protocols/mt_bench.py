"""MT-Bench's judge prompts: single-answer grading (1-10) and pairwise comparison (A, B or a tie).

Source: lm-sys/FastChat@0e6d3e4b (Apache-2.0): the prompts are fastchat/llm_judge/data/judge_prompts.jsonl
("single-v1", "single-math-v1", "single-v1-multi-turn"; "pair-v2", "pair-math-v1", "pair-v2-multi-turn"),
shipped verbatim in prompts/protocols/mt-bench-*.yaml; filling and parsing follow fastchat/llm_judge/common.py
(run_judge_single / run_judge_pair, the OpenAI path that MT-Bench's GPT-4 judge takes): `system_prompt` is the
system message, `prompt_template.format(...)` the user message. Why: MT-Bench is the reference LLM-as-a-judge
setup (Zheng et al. 2023), the prompts every later judge is compared against.

Which prompt: the reference-based one ("math", which FastChat uses for math, reasoning and coding) when the
record has a reference; the multi-turn one for a two-turn conversation (user, assistant, user) without one,
the earlier assistant turn standing for each answer's first turn; else the single-turn one, with a longer
conversation rendered as "User: ...\\nAssistant: ..." lines as the question.

The parsers, as FastChat's: single takes the FIRST `[[x]]` (x = digits with an optional decimal part, so
8.5 counts), else the first `[x]`, read with ast.literal_eval, no range check; what literal_eval refuses
("08") crashes FastChat and is a failed parse here. Pairwise: `[[A]]` anywhere wins, then `[[B]]`, then
`[[C]]` (a tie); nothing else counts. One deviation, in when a sample counts as finished: the engines stop
a sample at the first verdict the parser reads, and the single parser's one-bracket fallback would stop it
at any `arr[0]` in the critique, so a single sample is finished only by a `[[x]]`; one that ends with only a
`[x]` gets the forced `Rating: [[x]]` instead of the fallback's reading.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render_context
from grm_cli.core.protocols.base import Found, Protocol, TaggedVerdict, protocol_texts
from grm_cli.core.records import Record

# FastChat common.py: one_score_pattern and one_score_pattern_backup
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
_PICKS = (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "C"))  # checked in this order, as FastChat does


def find_rating(text: str) -> Found:
    """FastChat's single-answer parser: the first `[[x]]`, else the first `[x]`, as ast.literal_eval reads it."""
    m = _RATING.search(text) or _RATING_BACKUP.search(text)
    if m is None:
        return None, 'no rating: neither "[[rating]]" nor "[rating]" in the answer', None
    try:
        ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return None, f"unreadable rating {m.group(1)!r} (FastChat's ast.literal_eval refuses it)", None
    return m.group(1), None, m.span(1)


def find_pick(text: str) -> Found:
    """FastChat's pairwise parser: `[[A]]` anywhere, else `[[B]]`, else `[[C]]` (a tie)."""
    for tag, value in _PICKS:
        i = text.find(tag)
        if i >= 0:
            return value, None, (i + 2, i + 3)
    return None, 'no verdict: none of "[[A]]", "[[B]]", "[[C]]" in the answer', None


@dataclass(frozen=True)
class RatingVerdict(TaggedVerdict):
    """A single rating: finished only by a `[[x]]` (see the module docstring); parsed by all of FastChat's rules."""

    def is_complete(self, text: str) -> bool:
        return _RATING.search(text) is not None


def _variant(rec: Record, kind: str) -> tuple[str, dict[str, str]]:
    """Which FastChat prompt a record takes, and its fields other than the answers."""
    turns = rec.context
    if rec.reference is not None:
        return f"{kind}-math-v1", {"question": render_context(rec), "ref_answer_1": rec.reference}
    if tuple(t.role for t in turns) == ("user", "assistant", "user"):
        multi = "single-v1-multi-turn" if kind == "single" else "pair-v2-multi-turn"
        return multi, {"question_1": turns[0].content, "question_2": turns[2].content, "first": turns[1].content}
    return ("single-v1" if kind == "single" else "pair-v2"), {"question": render_context(rec)}


def _critique(text: str, start: int, label: str = "") -> str | None:
    """What the judge wrote before its verdict (its explanation), without the verdict's own label."""
    before = text[:start].rstrip().removesuffix("[[").removesuffix("[").rstrip()
    if label and before.endswith(label):
        before = before[: -len(label)]
    return before.strip() or None


class MTBenchSingle(Protocol):
    name = "mt-bench-single"
    title = "MT-Bench single-answer grading, 1-10 (FastChat llm_judge)"
    source = "lm-sys/FastChat@0e6d3e4b fastchat/llm_judge/data/judge_prompts.jsonl, common.py"
    licence = "Apache-2.0"
    shape = "absolute"
    scale = (1, 10)
    uses = ("reference",)
    judges = "GPT-4 in the MT-Bench paper; any instruction-following chat model"

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        (i,) = shown
        name, fields = _variant(rec, "single")
        if "first" in fields:
            fields = {"question_1": fields["question_1"], "question_2": fields["question_2"],
                      "answer_1": fields["first"], "answer_2": rec.responses[i]}
        else:
            fields["answer"] = rec.responses[i]
        p = protocol_texts(self.name)["prompts"][name]
        messages = ({"role": "system", "content": p["system_prompt"]}, {"role": "user", "content": p["prompt_template"].format(**fields)})
        return Prompt(messages, "", tuple(shown))

    def verdict_format(self, n_shown: int) -> RatingVerdict:
        values = tuple(str(v) for v in range(1, 11))
        return RatingVerdict(prefix="\n\nRating: [[", values=values, suffix="]]", find=find_rating, markers=("Rating:",))

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_rating(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, (ast.literal_eval(value),), critique=_critique(text, span[0], "Rating:"), verdict=value)


class MTBenchPairwise(Protocol):
    name = "mt-bench-pairwise"
    title = "MT-Bench pairwise comparison, A/B or tie (FastChat llm_judge)"
    source = "lm-sys/FastChat@0e6d3e4b fastchat/llm_judge/data/judge_prompts.jsonl, common.py"
    licence = "Apache-2.0"
    shape = "pairwise"
    scale = (0, 1)
    ties = True
    uses = ("reference",)
    judges = "GPT-4 in the MT-Bench paper; any instruction-following chat model"
    pick_values = ("A", "B")
    tie_value = "C"

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        a, b = (rec.responses[i] for i in shown)
        name, fields = _variant(rec, "pair")
        if "first" in fields:
            first = fields.pop("first")
            fields.update(answer_a_1=first, answer_b_1=first, answer_a_2=a, answer_b_2=b)
        else:
            fields.update(answer_a=a, answer_b=b)
        p = protocol_texts(self.name)["prompts"][name]
        messages = ({"role": "system", "content": p["system_prompt"]}, {"role": "user", "content": p["prompt_template"].format(**fields)})
        return Prompt(messages, "", tuple(shown))

    def verdict_format(self, n_shown: int) -> TaggedVerdict:
        return TaggedVerdict(prefix="\n\n[[", values=("A", "B", "C"), suffix="]]", find=find_pick, markers=("[[A", "[[B", "[[C"))

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_pick(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, self.pick_scores(value), critique=_critique(text, span[0]), verdict=value)
