"""Flow-Judge-v0.1's protocol: one response per call, `<feedback>...</feedback>` then `<score>N</score>`.

Source: github.com/flowaicom/flow-judge @ 9865fc0 (v0.1.1-4): the prompt of
flow_judge/utils/prompt_formatter.py (its words ship verbatim in prompts/protocols/flow-judge.yaml), filled
as BaseFlowJudge._format_prompt fills it, and the parser EvalOutput.parse (flow_judge/eval_data_types.py).
Licence: Apache-2.0 (the repository and the weights). Why: Flow-Judge is a small (3.8B, Phi-3.5-mini)
open judge trained on exactly this prompt with a user's own criteria and rubric.

The record becomes Flow-Judge's task as the library's presets name it: the query (a conversation as
`render_context` writes it) is the input <query>, a reference answer the input <reference_answer>, the
judged response the output <response>. The rubric is required: its criteria fill <evaluation_criteria> and
its score descriptions <scoring_rubric> ("- Score N: ...", lowest first); a plain-text rubric fills
<scoring_rubric> as written (the criteria then stay empty).

Scale: Flow-Judge rubrics are 0-1, 1-3 or 1-5, so the allowed scores are the record's rubric's score keys
when it has score descriptions, else 1-5. The base signatures `verdict_format(n_shown)` and
`parse(text, n_shown)` know no record and use 1-5; pass `rec=` to them (and to `candidates`/`spans`) to
use the record's rubric. The parser is the library's (first <feedback> match and first <score> match,
both required) plus a range check, as flowaicom's evaluation harness maps a score off the rubric to a
failure (the library itself returns any integer).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render_context
from grm_cli.core.protocols.base import Found, Protocol, TaggedVerdict, protocol_texts
from grm_cli.core.records import Record, Rubric

_FEEDBACK = re.compile(r"<feedback>\s*(.*?)\s*</feedback>", re.DOTALL)
_SCORE = re.compile(r"<score>\s*(\d+)\s*</score>", re.DOTALL)
DEFAULT_SCORES = (1, 2, 3, 4, 5)


def _format_vars(variables: list[dict[str, str]]) -> str:
    """Each variable as <name>\\nvalue\\n</name> (format_vars)."""
    out = []
    for var in variables:
        for key, value in var.items():
            tag = key.lower().replace(" ", "_")
            out.append(f"<{tag}>\n{value}\n</{tag}>")
    return "\n".join(out)


def _format_rubric(scores: Sequence[tuple[int, str]]) -> str:
    """The score items, lowest first (format_rubric)."""
    return "\n".join(f"- Score {score}: {text}" for score, text in sorted(scores, key=lambda s: s[0]))


def find_score(text: str, allowed: Sequence[int] = DEFAULT_SCORES) -> Found:
    """EvalOutput.parse: the first <score>\\s*(\\d+)\\s*</score> and a <feedback>...</feedback>, both required;
    then grm's range check. The verdict is the score as int() reads it ("03" -> "3")."""
    score = _SCORE.search(text)
    if score is None:
        return None, "no <score>N</score> in the answer", None
    if _FEEDBACK.search(text) is None:
        return None, "no <feedback>...</feedback> in the answer (Flow-Judge's parser needs both)", None
    value = int(score.group(1))
    if value not in allowed:
        return None, f"score {value} is not on the rubric's scale ({', '.join(map(str, allowed))})", None
    return str(value), None, score.span(1)


def opening(kept: str) -> str:
    """What to append before the forced score: the official parser needs a closed <feedback> as well, so a
    sample that stopped inside its feedback gets it closed, and one that wrote none an empty one."""
    if _FEEDBACK.search(kept):
        return "\n<score>"
    if "<feedback>" in kept:
        return "\n</feedback>\n<score>"
    return "\n<feedback>\n</feedback>\n<score>"


class FlowJudge(Protocol):
    name = "flow-judge"
    title = "Flow-Judge-v0.1: feedback, then a score on the record's rubric (one response per call)"
    source = "github.com/flowaicom/flow-judge @ 9865fc0 (v0.1.1-4): flow_judge/utils/prompt_formatter.py, flow_judge/eval_data_types.py"
    licence = "Apache-2.0"
    shape = "absolute"
    scale = (1, 5)  # without a rubric's score descriptions; see `allowed`
    requires = ("rubric",)
    uses = ("reference",)
    judges = "Flow-Judge-v0.1 (Phi-3.5-mini)"

    def __init__(self, rec: Record | None = None):
        self._rec = rec  # bound by `for_record`: the scale is the record's rubric's
        if rec is not None:
            allowed = self.allowed(rec)
            self.scale = (min(allowed), max(allowed))

    def for_record(self, rec: Record) -> "FlowJudge":
        return FlowJudge(rec)

    def allowed(self, rec: Record | None = None) -> tuple[int, ...]:
        """The scores a verdict may give: the rubric's score keys, else 1-5."""
        rec = rec if rec is not None else self._rec
        rubric: Rubric | None = rec.rubric if rec is not None else None
        if rubric is not None and rubric.scores:
            return tuple(score for score, _ in rubric.scores)
        return DEFAULT_SCORES

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        if rec.rubric is None:
            self.check(rec)  # names the missing field
        (i,) = shown
        texts = protocol_texts(self.name)
        inputs = [{texts["input_query"]: render_context(rec)}]
        if rec.reference is not None:
            inputs.append({texts["input_reference"]: rec.reference})
        rubric = rec.rubric
        criteria, scale_text = ("", rubric.criteria) if rubric.is_text else (rubric.criteria, _format_rubric(rubric.scores))
        fields = {
            "INPUTS": _format_vars(inputs),
            "OUTPUT": _format_vars([{texts["output"]: rec.responses[i]}]),
            "EVALUATION_CRITERIA": criteria,
            "RUBRIC": scale_text,
        }
        template = texts["user"] if fields["INPUTS"] else texts["user_no_inputs"]  # format_user_prompt
        return Prompt(messages=({"role": "user", "content": template.format(**fields)},), assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int, rec: Record | None = None) -> TaggedVerdict:
        allowed = self.allowed(rec)
        return TaggedVerdict(prefix="\n<score>", values=tuple(map(str, allowed)), suffix="</score>",
                             find=partial(find_score, allowed=allowed), markers=("<score>",), opening=opening)

    def parse(self, text: str, n_shown: int, rec: Record | None = None) -> Judgment:
        value, error, _ = find_score(text, self.allowed(rec))
        feedback = _FEEDBACK.search(text)
        critique = feedback.group(1).strip() if feedback else None
        if value is None:
            return Judgment(text, None, error, critique=critique)
        return Judgment(text, (int(value),), None, critique=critique, verdict=value)

    def candidates(self, n_shown: int, rec: Record | None = None) -> tuple[str, ...]:
        return self.verdict_format(n_shown, rec).values

    def spans(self, text: str, n_shown: int, rec: Record | None = None) -> list[tuple[int, int]]:
        span = self.verdict_format(n_shown, rec).span(text)
        return [span] if span else []

    def describe(self) -> dict:
        return {**super().describe(), "scale": "the rubric's scores (0-1, 1-3 or 1-5); 1-5 when it has no score descriptions"}
