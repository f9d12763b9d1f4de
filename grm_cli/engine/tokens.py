"""Tokenizing text that continues a model's answer (a forced verdict's opening after what it wrote).

A SentencePiece vocabulary with `add_space_prefix` (llama 2, Mistral, Phi-3) puts a `▁` before any text it
tokenizes from the start, so a continuation tokenized alone would make the model read " \\n[RESULT] " where
grm records "\\n[RESULT] ": the forced verdict would be sampled after a space the model never wrote, and the
expected-score probe (which renders the whole text) would see other tokens. The continuation's tokens are
therefore taken after an anchor whose own tokens are known, and checked to spell the text exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

_ANCHORS = ("\n", ".", "a")


def continuation_tokens(tokenize: Callable[[str], list[int]], detokenize: Callable[[Sequence[int]], bytes], text: str) -> list[int]:
    """Tokens that spell exactly `text` when it follows other text (no space prefix)."""
    plain = tokenize(text)
    if not text or detokenize(plain) == text.encode("utf-8"):
        return plain
    for anchor in _ANCHORS:
        head = tokenize(anchor)
        both = tokenize(anchor + text)
        if both[: len(head)] == head and detokenize(both[len(head):]) == text.encode("utf-8"):
            return both[len(head):]
    return plain
