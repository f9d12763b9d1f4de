"""Expected scores: the model's probability of every allowed score at each score position of a sample.

A second llama.cpp context on the loaded weights (logits, no sampling). For a sample's text it decodes the
prompt (a reusable part, decoded alone so the result never depends on the previous sample), then the
answer up to each score, and reads the distribution over the allowed values there. Values are token
sequences ("10" is "1","0" in most vocabularies): the probability of a value is the product of its tokens'
probabilities along a trie of the candidates, each step renormalised over what may follow (the other
candidates' next tokens, or the end of the number), as the score grammar allows. Later scores are
conditioned on the sampled earlier ones. The expected value is the sum of value x probability.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from grm_cli.engine.side import SideContext


class ScoreProbe(SideContext):
    def __init__(self, engine, lo: int = 1, hi: int = 10, *, n_ctx: int | None = None, n_threads: int | None = None, verbose: bool = False):
        super().__init__(engine, n_ctx or self.default_n_ctx(engine, 64), what="expected scores", n_threads=n_threads, verbose=verbose)
        self.lo, self.hi = lo, hi
        # The candidates: each allowed value's tokens, as the model writes them standalone.
        self.values = [str(v) for v in range(lo, hi + 1)]
        self._standalone: dict[str, tuple[int, ...]] = {}
        self.cand = {v: self._standalone_tokens(v) for v in self.values}

    def _standalone_tokens(self, value: str) -> tuple[int, ...]:
        if value not in self._standalone:
            self._standalone[value] = tuple(self.model.tokenize(value, special=False))
        return self._standalone[value]

    def _logprobs(self) -> np.ndarray:
        logits = self.ctx.logits(-1).astype(np.float64)
        m = logits.max()
        return logits - (m + math.log(np.exp(logits - m).sum()))

    def _extend(self, tokens: list[int], split: int) -> np.ndarray:
        """Make the context hold `tokens` (tokens[:split] the reusable prompt); log-probs after the last."""
        self._check_fits(tokens)
        if split and self._split == split and self._held[:split] == tokens[:split]:
            keep = split
            for a, b in zip(self._held[split:], tokens[split:]):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(tokens) - 1)
        else:
            keep = 0
        if not self.ctx.seq_rm(0, keep, -1):  # recurrent models cannot drop a tail
            self.ctx.seq_rm(0)
            keep = 0
        if keep == 0 and split:
            self._decode(tokens[:split], 0, last=False)
            keep = split
        self._decode(tokens[keep:], keep, last=True)
        self._held, self._split = list(tokens), split
        return self._logprobs()

    def _candidates(self, messages: Sequence[dict], text: str, base: list[int], values: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """Each value's tokens as the model would write them right there (SentencePiece vocabularies add a
        leading space to a standalone "7"); the standalone tokens where the text does not tokenize as a prefix."""
        out = {}
        for v in values:
            toks = self.model.tokens(messages, text + v)
            out[v] = tuple(toks[len(base):]) if toks[: len(base)] == base and len(toks) > len(base) else self._standalone_tokens(v)
        return out

    def _distribution(self, base: list[int], split: int, root: np.ndarray, cand: dict[str, tuple[int, ...]] | None = None) -> dict[str, float]:
        """P(value) at the end of `base` (whose log-probs are `root`), walking the candidates' token trie:
        at a node where the number may end or go on, the end is the model's mass on anything but a digit."""
        cand = cand or self.cand
        values = list(cand)
        probs = {v: 0.0 for v in values}
        digits = {t for v in values for t in cand[v]}

        def walk(prefix: tuple, under: list[int], mass: float, lp: np.ndarray | None) -> None:
            ends = [v for v in under if len(cand[v]) == len(prefix)]
            cont: dict[int, list[int]] = {}
            for v in under:
                if len(cand[v]) > len(prefix):
                    cont.setdefault(cand[v][len(prefix)], []).append(v)
            if not cont:
                for v in ends:
                    probs[v] += mass / len(ends)
                return
            if len(cont) == 1 and not ends:  # one way on: no choice, no decode
                (t, vs), = cont.items()
                walk(prefix + (t,), vs, mass, None)
                return
            if lp is None:
                lp = self._extend(base + list(prefix), split)
            weights = {t: math.exp(lp[t]) for t in cont}
            end_w = max(0.0, 1.0 - sum(math.exp(lp[t]) for t in digits)) if ends else 0.0
            total = sum(weights.values()) + end_w
            if total <= 0.0:
                total, weights, end_w = float(len(cont) + bool(ends)), {t: 1.0 for t in cont}, float(bool(ends))
            for v in ends:
                probs[v] += mass * end_w / total / len(ends)
            for t, vs in cont.items():
                walk(prefix + (t,), vs, mass * weights[t] / total, None)

        walk((), values, 1.0, root)
        return probs

    # -- the API ---------------------------------------------------------------------------------
    def expected(self, messages: Sequence[dict], text: str, spans: Sequence[tuple[int, int]]) -> tuple[float, ...]:
        """The expected value at each score span of `text` (the assistant's whole answer, pre-fill included)."""
        return tuple(sum(int(v) * p for v, p in dist.items()) for dist in self.distributions(messages, text, spans, self.values))

    def distributions(self, messages: Sequence[dict], text: str, spans: Sequence[tuple[int, int]], values: Sequence[str]) -> list[dict[str, float]]:
        """At each span of `text` (the assistant's whole answer, pre-fill included), the model's probability of
        each allowed verdict (`values`, as written: "1".."10", or a protocol's "A"/"B"), as the grammar allows."""
        prompt = self.model.tokens(messages, "")
        out = []
        for i, (start, _) in enumerate(spans):
            full = self.model.tokens(messages, text[:start])
            split = len(prompt) if full[: len(prompt)] == prompt and len(full) > len(prompt) else 0
            if i == 0 and self._split == split:
                # A new sample reuses the prompt only: its own text is always decoded from the same point
                # in the same chunks, so its numbers never depend on the sample before it.
                self._held = self._held[:split]
            out.append(self._distribution(full, split, self._extend(full, split), self._candidates(messages, text[:start], full, values)))
        return out
