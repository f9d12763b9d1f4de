"""One sample as the batched engine generates it: its sampled tokens assembled into UTF-8 text, stop
strings, and the forced answer line, exactly as `LlamaEngine` forces it: when free text ends without a
complete answer, the started answer is dropped from the sequence's cache, the kept text's remainder and
the answer's opening are decoded, and a grammar sampler (first in its chain) admits only valid answers.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grm_cli.engine.base import Generation, GenerationRequest
from grm_cli.engine.model import Model

if TYPE_CHECKING:
    from grm_cli.native import Context, SamplerChain


@dataclass(eq=False)
class SampleStream:
    """One sample being generated in sequence `seq_id` of `ctx` (a `native.Context`)."""

    index: int  # position in the caller's request list
    req: GenerationRequest
    seq_id: int
    prompt_len: int
    group: Any  # the scheduler's record of the prompt's cells
    started: float
    model: Model
    ctx: "Context"
    chain: "SamplerChain | None" = None
    pos: int = 0  # next position to write
    pending: list[int] = field(default_factory=list)  # tokens to decode for this sequence next step
    tokens: list[int] = field(default_factory=list)  # sampled free tokens
    piece_ends: list[int] = field(default_factory=list)  # byte length of the free text after each token
    data: bytearray = field(default_factory=bytearray)  # free text bytes
    phase: str = "free"  # "free" -> ("tail") -> "done"
    kept: str = ""  # free text kept before the forced prefix
    tail_text: str = ""
    tail_tokens: int = 0
    forced: bool = False
    finish: str = "length"

    def start(self) -> None:
        """Its sampler chain, seeded from its request (ValueError for a temperature llama.cpp cannot take)."""
        from grm_cli.native import SamplerChain

        self.chain = SamplerChain(self.model.native, self.req.temperature, self.req.seed)

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")

    def accept(self, tok: int) -> None:
        """Take a sampled token: extend the text, and decide whether the sequence goes on."""
        req, native = self.req, self.model.native
        if self.phase == "tail":
            self.tail_tokens += 1
            if not native.is_eog(tok):
                self.tail_text += native.piece(tok).decode("utf-8", "replace")
            if req.tail.is_closed(self.tail_text) or self.tail_tokens >= req.tail.max_tokens or native.is_eog(tok):
                self.phase = "done"
            else:
                self.pending = [tok]
            return
        if native.is_eog(tok):
            self.finish = "stop"
            self._end_free()
            return
        self.tokens.append(tok)
        self.data += native.piece(tok)
        self.piece_ends.append(len(self.data))
        text = _decode_prefix(self.data)
        for stop in req.stop:
            cut = text.find(stop)
            if cut >= 0:
                self.data = bytearray(text[:cut].encode("utf-8"))
                self.finish = "stop"
                self.phase = "done"
                return
        if req.tail is not None and req.tail.is_complete(text):
            self.finish = "answer"
            self.phase = "done"
            return
        if len(self.tokens) >= req.max_tokens:
            self.finish = "length"
            self._end_free()
            return
        self.pending = [tok]

    def _end_free(self) -> None:
        """Free text is over: done, or start the forced answer line for this sequence."""
        req = self.req
        text = self.text()
        if req.tail is None or req.tail.is_complete(text):
            self.phase = "done"
            return
        kept = req.tail.trim(text)
        kept_bytes = kept.encode("utf-8")
        n_keep = 0
        for i, end in enumerate(self.piece_ends):
            if end > len(kept_bytes):
                break
            n_keep = i + 1
        done_bytes = self.piece_ends[n_keep - 1] if n_keep else 0
        rest = kept_bytes[done_bytes:].decode("utf-8", "replace") + req.tail.prefix_for(kept)
        # The cache holds the prompt and the free tokens decoded so far (the last sampled one is not).
        # Keep what the kept text covers, drop the rest, and queue what still needs decoding.
        decoded = self.pos - self.prompt_len
        start = self.prompt_len + min(n_keep, decoded)
        self.ctx.seq_rm(self.seq_id, start, -1)
        self.pos = start
        self.kept = kept
        self.forced = True
        self.pending = self.tokens[decoded:n_keep] + self.model.continuation(rest, special=False)
        self.close()
        from grm_cli.native import SamplerChain

        self.chain = SamplerChain(self.model.native, req.temperature, req.seed + 1, grammar=req.tail.grammar)
        self.phase = "tail"

    def close(self) -> None:
        """Free its sampler chain."""
        if self.chain is not None:
            self.chain.close()
            self.chain = None

    def result(self) -> Generation:
        self.close()
        free_text = self.text()
        if self.forced:
            text = self.kept + self.req.tail.prefix_for(self.kept) + self.tail_text
            forced, finish = True, "forced"
        else:
            text, forced, finish = free_text, False, self.finish
        return Generation(
            text=text,
            free_text=free_text,
            forced_tail=forced,
            finish_reason=finish,
            prompt_tokens=self.prompt_len,
            completion_tokens=len(self.tokens) + self.tail_tokens,
            seconds=time.perf_counter() - self.started,
        )


def _decode_prefix(data: bytearray) -> str:
    """The text of the bytes so far, leaving out an incomplete UTF-8 character at the end."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    return dec.decode(bytes(data), final=False)
