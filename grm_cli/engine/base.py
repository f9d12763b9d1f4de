"""The engine protocol: one request in, one sampled text out, with token and time accounting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence


@dataclass(frozen=True)
class ForcedTail:
    """An answer line the engine guarantees, described by the caller (the engine knows no answer format):
    when free text ends without a complete answer (or hits its budget), the engine keeps `trim(text)`,
    appends `prefix` (or `opening(kept)`: a verdict that needs a section closed first) and decodes the rest under `grammar` (GBNF; `regex` for servers with guided
    decoding) until `is_closed(rest)`; a server's continuation is cleaned by `answer`."""

    prefix: str
    grammar: str
    regex: str
    is_complete: Callable[[str], bool]
    trim: Callable[[str], str]
    is_closed: Callable[[str], bool]
    answer: Callable[[str], str]
    max_tokens: int = 64
    opening: Callable[[str], str] | None = None  # the prefix for a given kept text, where it depends on it (else `prefix`)

    def prefix_for(self, kept: str) -> str:
        """What is appended to the kept text before the grammar takes over."""
        return self.opening(kept) if self.opening is not None else self.prefix


TAIL_SLACK = 48  # tokens for a forced tail's prefix and the re-tokenised boundary of the kept text


def budget(request: "GenerationRequest") -> int:
    """The ONE token-budget rule: tokens a request may add to its prompt (the free generation, and a
    forced tail with its prefix). The preflight check, truncation and every engine use it, so a record
    that passes the check before a run never overflows the context during it."""
    return request.max_tokens + (request.tail.max_tokens + TAIL_SLACK if request.tail else 0)


@dataclass(frozen=True)
class GenerationRequest:
    messages: Sequence[dict]
    assistant_prefix: str = ""  # pre-filled start of the model's answer (e.g. fixed principles)
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    stop: Sequence[str] = ()
    tail: ForcedTail | None = None
    # A hint, not part of what is generated (the sample cache ignores it): a later call will ask for more
    # samples of this prompt (adaptive voting's next round). An engine with a prompt cache keeps its cells.
    keep_prompt: bool = False


@dataclass(frozen=True)
class Generation:
    text: str  # the model's continuation after assistant_prefix, forced tail included
    free_text: str  # what the model wrote by itself, before any forced tail
    forced_tail: bool  # True when the answer line had to be forced
    finish_reason: str  # "stop", "length", "answer" (complete answer seen) or "forced"
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass
class EngineStats:
    """What an engine did, for the speed line of a run: tokens in the prompts as rendered, tokens llama.cpp
    actually evaluated for them (shared prefixes are evaluated once), tokens generated, and the time spent
    in prompt evaluation and in decoding (None where the engine cannot tell them apart)."""

    requests: int = 0
    prompt_tokens: int = 0
    prompt_evaluated: int | None = None
    prompt_seconds: float | None = None
    generated_tokens: int = 0
    decode_seconds: float | None = None
    wall_seconds: float = 0.0

    def since(self, before: "EngineStats", wall: float) -> "EngineStats":
        """What the engine did between `before` (a copy taken then) and now, over `wall` seconds."""
        fields = ("requests", "prompt_tokens", "prompt_evaluated", "prompt_seconds", "generated_tokens", "decode_seconds")
        delta = {k: (getattr(self, k) - getattr(before, k)) if getattr(self, k) is not None else None for k in fields}
        return EngineStats(**delta, wall_seconds=wall)

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in ("requests", "prompt_tokens", "prompt_evaluated", "generated_tokens")}
        out["wall_seconds"] = round(self.wall_seconds, 3)
        out["prompt_tokens_per_second"] = round(self.prompt_evaluated / self.prompt_seconds, 1) if self.prompt_seconds and self.prompt_evaluated else None
        out["generated_tokens_per_second"] = round(self.generated_tokens / self.decode_seconds, 1) if self.decode_seconds else (
            round(self.generated_tokens / self.wall_seconds, 1) if self.wall_seconds else None)
        return out


class ContextOverflow(Exception):
    """The prompt plus the generation budget does not fit in the context window."""

    def __init__(self, prompt_tokens: int, needed: int, n_ctx: int):
        self.prompt_tokens, self.needed, self.n_ctx = prompt_tokens, needed, n_ctx
        super().__init__(f"prompt is {prompt_tokens} tokens and needs {needed} with the generation budget, but the context is {n_ctx}")


class Engine(Protocol):
    name: str  # model name for results
    n_ctx: int
    stats: EngineStats  # what it did so far (a run's speed line is the difference)

    def count_tokens(self, messages: Sequence[dict], assistant_prefix: str = "") -> int: ...

    def generate(self, request: GenerationRequest) -> Generation: ...

    def generate_many(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Every request, in request order (an engine that batches takes them together)."""
        ...


class EngineBase:
    """The defaults an engine may take: `generate_many` one request at a time, and empty `stats`."""

    stats: EngineStats

    def __init__(self) -> None:
        self.stats = EngineStats()

    def generate(self, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    def generate_many(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [self.generate(r) for r in requests]
