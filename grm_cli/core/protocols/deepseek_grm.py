"""DeepSeek-GRM's protocol (Liu et al. 2025, App. G): principles, a critique, and a score line per response.

The default protocol. Its words are the templates in prompts/ (pointwise, single, judge, compact or a
user's YAML), so the layout lives where it always did (`core.prompt`) and the score line where it always
did (`core.score_line`); this class presents them as a `Protocol`. Scoring takes the template itself
(`judge_layout`), so results written before protocols existed resume and compare unchanged.
Source: arXiv 2504.02495 v3, App. G (no official code was released); licence of the texts: the paper's.
"""

from __future__ import annotations

from typing import Sequence

from grm_cli.core.judgment import Judgment, parse_judgment
from grm_cli.core.prompt import Prompt, Template, load_template, render
from grm_cli.core.protocols.base import Protocol
from grm_cli.core.records import Record
from grm_cli.core.score_line import score_spans
from grm_cli.errors import InputError


class DeepSeekGRM(Protocol):
    name = "deepseek-grm"
    title = "DeepSeek-GRM: principles, critique, a score per response (paper App. G)"
    source = "Liu et al., Inference-Time Scaling for Generalist Reward Modeling, arXiv 2504.02495 v3, App. G"
    licence = "the paper's text (CC BY 4.0); prompts/ templates Apache-2.0 (grm)"
    shape = "listwise"
    scale = (1, 10)
    judges = "DeepSeek-GRM-16B/27B; any instruct model (the default)"
    principles = True

    def __init__(self, template: Template):
        self.template = template
        if template.kind == "judge":
            self.scale = (0, 1)
        else:
            self.scale = (template.score_min, template.score_max)

    @classmethod
    def from_template(cls, name_or_path: str) -> "DeepSeekGRM":
        return cls(load_template(name_or_path))

    @property
    def responses_range(self) -> tuple[int, int]:
        return self.template.min_responses, self.template.max_responses

    def render(self, rec: Record, shown: Sequence[int], **kw) -> Prompt:
        return render(self.template, rec, shown, **kw)

    def verdict_format(self, n_shown: int):
        return self.template.score_line(n_shown)

    def parse(self, text: str, n_shown: int) -> Judgment:
        t = self.template
        line = t.score_line(n_shown)
        return parse_judgment(text, line.count, line.lo, line.hi, principles_label=t.principles_label,
                              critique_label=t.critique_label, scores_label=t.scores_label)

    def check(self, rec: Record) -> None:
        self.template.check_count(rec)
        if rec.label is not None and (self.template.score_min, self.template.score_max) != (0, 1):
            raise InputError(f'field "label": a 0/1 label is judged with a 0/1 template (--template single), not "{self.template.name}"', rec.source, rec.line)

    def candidates(self, n_shown: int) -> tuple[str, ...]:
        lo, hi = self.template.score_range(n_shown)
        return tuple(str(v) for v in range(lo, hi + 1))

    def spans(self, text: str, n_shown: int) -> list[tuple[int, int]]:
        return score_spans(text)

    def describe(self) -> dict:
        out = super().describe()
        out["template"] = self.template.name
        out["scale"] = "index of the best" if self.template.kind == "judge" else f"{self.template.score_min}-{self.template.score_max}"
        return out


def judge_layout(protocol: Protocol):
    """What scoring takes for a protocol: the default protocol's template, any other protocol itself."""
    return protocol.template if isinstance(protocol, DeepSeekGRM) else protocol


__all__ = ["DeepSeekGRM", "judge_layout"]
