"""Skywork-Critic-Llama-3.1's protocol: two responses, the verdict alone, "[[A]]" or "[[B]]" (no tie).

Source: the model card huggingface.co/Skywork/Skywork-Critic-Llama-3.1-8B (and -70B), its usage example: the
prompt_template filled by str.format(input=..., response_a=..., response_b=...) and sent as one user message.
The card's body is not among grm's stored sources; the template's bytes come from a verbatim copy,
github.com/Freder-chen/ReasonGenRM @ 91070c2 src/utils/prompt_templates.py ("Copy form" the 70B card), and ship
in prompts/protocols/skywork-critic.yaml. The card has no parser, only the expected answer "[[A]]"; grm reads it
by the rule of the code the prompt comes from (FastChat's pair-v2 judge, as RewardBench keeps it:
rewardbench/generative.py process_judgement): "[[A]]" anywhere wins, else "[[B]]", else the answer fails; "[[C]]"
(a tie) is no verdict here. Licence: the card's, Skywork Community License (a Llama 3.1 fine-tune, so the Llama
3.1 Community License as well); the prompt text is quoted from the card with attribution. Why: a strong open
pairwise judge (8B and 70B) trained on exactly this prompt.

The query is the template's one question (a conversation as `render_context` writes it). Forcing writes
"[[" + A/B + "]]": when nothing precedes it, exactly the card's answer.
"""

from __future__ import annotations

from typing import Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render_context
from grm_cli.core.protocols.base import Found, Protocol, TaggedVerdict, protocol_texts
from grm_cli.core.records import Record


def find_pick(text: str) -> Found:
    """`"[[A]]" in text` gives A, else `"[[B]]" in text` gives B (FastChat / RewardBench), else a failure."""
    for value in ("A", "B"):
        i = text.find(f"[[{value}]]")
        if i >= 0:
            return value, None, (i + 2, i + 3)
    return None, 'no verdict: neither "[[A]]" nor "[[B]]" in the answer', None


class SkyworkCritic(Protocol):
    name = "skywork-critic"
    title = "Skywork-Critic: the better of two responses, [[A]] or [[B]] (no tie, no explanation)"
    source = "huggingface.co/Skywork/Skywork-Critic-Llama-3.1-8B model card (template via Freder-chen/ReasonGenRM @ 91070c2); parser: FastChat/RewardBench [[A]] rule"
    licence = "Skywork Community License (the card's; a Llama 3.1 fine-tune: Llama 3.1 Community License); prompt quoted from the card"
    shape = "pairwise"
    scale = (0, 1)
    judges = "Skywork-Critic-Llama-3.1-8B/70B"

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        a, b = (rec.responses[i] for i in shown)
        user = protocol_texts(self.name)["user"].format(input=render_context(rec), response_a=a, response_b=b)
        return Prompt(messages=({"role": "user", "content": user},), assistant_prefix="", order=tuple(shown))

    def verdict_format(self, n_shown: int) -> TaggedVerdict:
        return TaggedVerdict(prefix="[[", values=self.pick_values, suffix="]]", find=find_pick)

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_pick(text)
        if value is None:
            return Judgment(text, None, error)
        return Judgment(text, self.pick_scores(value), critique=text[: span[0] - 2].strip() or None, verdict=value)
