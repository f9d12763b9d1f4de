"""Auto-J's pairwise protocol: two responses, "Response 1", "Response 2" or "Tie".

Source: GAIR-NLP/auto-j@2ae17a39, codes/usage/constants_prompt.py (`pairwise_tie`, `build_autoj_input`) and
codes/usage/example.py (`extract_pariwise_result`); the repository carries no licence file, so the prompt
is shipped as a quotation with attribution (prompts/protocols/auto-j-pairwise.yaml); the GAIR/autoj-13b
weights are under the Llama 2 Community License. Why: Auto-J (Li et al. 2023, arXiv:2310.05470) is a 13B
judge trained on exactly this prompt, so it should be asked in these words.

The message: `build_autoj_input` fills `pairwise_tie` with str.format and wraps it as "[INST] {text} [/INST]"
(Llama-2, no system message); vLLM then adds the BOS, so the model reads "<s>[INST] {text} [/INST]". grm's
message is the filled inner text, as the user turn, and the model's chat template wraps it: a Llama-2 template
gives the same bytes (its strip() changes nothing: the text starts and ends with the fixed instruction).
Sending the raw "[INST]" text instead would wrap it twice. GAIR/autoj-13b ships no chat template, so a GGUF
made from it falls back to ChatML in grm; `chat_template` (from the YAML) is the Llama-2 one to give it.

The parser, as `extract_pariwise_result`: strip the answer, take the LAST "final decision is ", strip and
lower-case what follows; it must start with "response 1", "response 2" or "tie", else the parse fails (no
fallback). The verdict is reported as the category the parser reads ("Response 1", "Response 2", "Tie").
"""

from __future__ import annotations

from typing import Sequence

from grm_cli.core.judgment import Judgment
from grm_cli.core.prompt import Prompt, render_context
from grm_cli.core.protocols.base import Found, Protocol, TaggedVerdict, protocol_texts
from grm_cli.core.records import Record

_KEY = "final decision is "
_CHOICES = (("response 1", "Response 1"), ("response 2", "Response 2"), ("tie", "Tie"))


def find_decision(text: str) -> Found:
    """Auto-J's `extract_pariwise_result`: the last "final decision is ", then Response 1 / Response 2 / Tie."""
    lead = len(text) - len(text.lstrip())
    body = text.strip()
    pos = body.rfind(_KEY)
    if pos == -1:
        return None, 'no "final decision is " in the answer', None
    rest = body[pos + len(_KEY):]
    said = rest.strip().lower()
    for word, value in _CHOICES:
        if said.startswith(word):
            start = lead + pos + len(_KEY) + len(rest) - len(rest.lstrip())
            return value, None, (start, start + len(word))
    return None, f'the final decision is not "Response 1", "Response 2" or "Tie": {said[:30]!r}', None


class AutoJPairwise(Protocol):
    name = "auto-j-pairwise"
    title = "Auto-J pairwise comparison with ties (GAIR-NLP/auto-j)"
    source = "GAIR-NLP/auto-j@2ae17a39 codes/usage/constants_prompt.py, example.py"
    licence = "no licence file in the repository (prompt quoted with attribution); weights: Llama 2 Community License"
    shape = "pairwise"
    scale = (0, 1)
    ties = True
    judges = "GAIR/autoj-13b (and its GPTQ 4-bit), GAIR/autoj-bilingual-6b in English"
    pick_values = ("Response 1", "Response 2")
    tie_value = "Tie"

    @property
    def chat_template(self) -> str:
        """The Llama-2 chat template Auto-J's input assumes, for GGUFs that carry none."""
        return protocol_texts(self.name)["chat_template"]

    def render(self, rec: Record, shown: Sequence[int]) -> Prompt:
        a, b = (rec.responses[i] for i in shown)
        text = protocol_texts(self.name)["pairwise_tie"].format(prompt=render_context(rec), response=a, response_another=b)
        return Prompt(({"role": "user", "content": text},), "", tuple(shown))

    def verdict_format(self, n_shown: int) -> TaggedVerdict:
        return TaggedVerdict(prefix="\n\nSo, the final decision is ", values=("Response 1", "Response 2", "Tie"),
                             find=find_decision, markers=("So, the final decision is", "final decision is"))

    def parse(self, text: str, n_shown: int) -> Judgment:
        value, error, span = find_decision(text)
        if value is None:
            return Judgment(text, None, error)
        # the critique: what precedes the line that states the decision
        line = text.rfind("\n", 0, text.rfind(_KEY, 0, span[0]))
        return Judgment(text, self.pick_scores(value), critique=text[: max(line, 0)].strip() or None, verdict=value)
