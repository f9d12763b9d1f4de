"""The chat layout: a model's own chat template, the generation prompt, then the pre-filled answer start.

One place, because the text a trainer fits must be byte for byte the text llama.cpp is given at scoring
time: `LlamaEngine.render` and the SPCT trainer both build prompts here.
"""

from __future__ import annotations

from typing import Sequence

# ChatML, for GGUFs that carry no template (SmolLM2's own template is this one)
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatLayout:
    """Renders chat messages with a Jinja chat template, as llama-cpp-python does."""

    def __init__(self, template: str | None, *, bos: str, eos: str):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.template = template or FALLBACK_CHAT_TEMPLATE
        self.bos, self.eos = bos, eos
        self._formatter = Jinja2ChatFormatter(self.template, eos_token=eos, bos_token=bos)

    def prompt(self, messages: Sequence[dict], assistant_prefix: str = "") -> str:
        """The text the model continues: template with the generation prompt, then `assistant_prefix`."""
        return self._formatter(messages=list(messages)).prompt + assistant_prefix

    def end_of_turn(self) -> str:
        """What a finished answer is followed by (the token that stops generation)."""
        return self.eos
