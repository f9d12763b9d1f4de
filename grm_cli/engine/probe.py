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
import os
from typing import Sequence

import numpy as np

from ..errors import ModelError
from .chunks import DecodeError, decode_sequence
from .hidden import base_engine
from .llama import captured_stderr


class ScoreProbe:
    def __init__(self, engine, lo: int, hi: int, *, n_ctx: int | None = None, n_threads: int | None = None, verbose: bool = False):
        import llama_cpp

        self._c = llama_cpp
        self.engine = base_engine(engine)
        self.lo, self.hi = lo, hi
        model = self.engine.llm._model.model
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model)))
        self.n_ctx = n_ctx or max(getattr(engine, "n_ctx", 0), self.engine.n_ctx) + 64
        self.n_batch = 512
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.n_ctx
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = 1
        threads = n_threads or max(1, os.cpu_count() or 1)
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        with captured_stderr(not verbose):
            self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise ModelError(f"{self.engine.path}: llama.cpp could not create a context for expected scores (out of memory?)")
        self._mem = llama_cpp.llama_get_memory(self.ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._held: list[int] = []
        self._split = 0
        # The candidates: each allowed value's tokens, as the model writes them standalone.
        self.values = list(range(lo, hi + 1))
        self.cand = {v: tuple(self.engine.llm.tokenize(str(v).encode(), add_bos=False, special=False)) for v in self.values}

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            self._c.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "ctx", None):
            self._c.llama_free(self.ctx)
            self.ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- decoding --------------------------------------------------------------------------------
    def _decode(self, tokens: list[int], start: int) -> None:
        try:
            decode_sequence(self._c, self.ctx, self._batch, self.n_batch, 0, tokens, start, want_last=True)
        except DecodeError as e:
            self._held = []
            self._c.llama_memory_seq_rm(self._mem, 0, 0, -1)
            raise ModelError(f"{e} while reading expected scores") from None

    def _logprobs(self) -> np.ndarray:
        ptr = self._c.llama_get_logits_ith(self.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float64)
        m = logits.max()
        return logits - (m + math.log(np.exp(logits - m).sum()))

    def _extend(self, tokens: list[int], split: int) -> np.ndarray:
        """Make the context hold `tokens` (tokens[:split] the reusable prompt); log-probs after the last."""
        if len(tokens) > self.n_ctx:
            raise ModelError(f"a sample of {len(tokens)} tokens does not fit the expected-score context ({self.n_ctx}): raise --ctx")
        if split and self._split == split and self._held[:split] == tokens[:split]:
            keep = split
            for a, b in zip(self._held[split:], tokens[split:]):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(tokens) - 1)
        else:
            keep = 0
        if not self._c.llama_memory_seq_rm(self._mem, 0, keep, -1):  # recurrent models cannot drop a tail
            self._c.llama_memory_seq_rm(self._mem, 0, -1, -1)
            keep = 0
        if keep == 0 and split:
            self._decode(tokens[:split], 0)
            keep = split
        self._decode(tokens[keep:], keep)
        self._held, self._split = list(tokens), split
        return self._logprobs()

    def _candidates(self, messages: Sequence[dict], text: str, base: list[int]) -> dict[int, tuple[int, ...]]:
        """Each value's tokens as the model would write them right there (SentencePiece vocabularies add a
        leading space to a standalone "7"); the standalone tokens where the text does not tokenize as a prefix."""
        eng = self.engine
        out = {}
        for v in self.values:
            toks = eng._tokens(eng.render(messages, text + str(v)))
            out[v] = tuple(toks[len(base):]) if toks[: len(base)] == base and len(toks) > len(base) else self.cand[v]
        return out

    def _distribution(self, base: list[int], split: int, root: np.ndarray, cand: dict[int, tuple[int, ...]] | None = None) -> dict[int, float]:
        """P(value) at the end of `base` (whose log-probs are `root`), walking the candidates' token trie:
        at a node where the number may end or go on, the end is the model's mass on anything but a digit."""
        cand = cand or self.cand
        probs = {v: 0.0 for v in self.values}
        digits = {t for v in self.values for t in cand[v]}

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

        walk((), list(self.values), 1.0, root)
        return probs

    # -- the API ---------------------------------------------------------------------------------
    def expected(self, messages: Sequence[dict], text: str, spans: Sequence[tuple[int, int]]) -> tuple[float, ...]:
        """The expected value at each score span of `text` (the assistant's whole answer, pre-fill included)."""
        eng = self.engine
        prompt = eng._tokens(eng.render(messages, ""))
        out = []
        for i, (start, _) in enumerate(spans):
            full = eng._tokens(eng.render(messages, text[:start]))
            split = len(prompt) if full[: len(prompt)] == prompt and len(full) > len(prompt) else 0
            if i == 0 and self._split == split:
                # A new sample reuses the prompt only: its own text is always decoded from the same point
                # in the same chunks, so its numbers never depend on the sample before it.
                self._held = self._held[:split]
            dist = self._distribution(full, split, self._extend(full, split), self._candidates(messages, text[:start], full))
            out.append(sum(v * p for v, p in dist.items()))
        return tuple(out)
