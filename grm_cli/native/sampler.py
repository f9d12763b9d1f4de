"""The owner of one llama.cpp sampler chain (llama-cpp-python's `_internals.LlamaSampler`): the paper's
plain temperature sampling (no top-k/top-p truncation; 0 is greedy), with a grammar first when asked."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import llama_cpp as lib

from grm_cli.errors import ModelError
from grm_cli.native.owner import NativeOwner

if TYPE_CHECKING:
    from grm_cli.native.context import Context
    from grm_cli.native.model import NativeModel


def check_temperature(temperature: float) -> None:
    if not (temperature >= 0 and temperature != float("inf")):  # NaN or inf aborts llama.cpp's process
        raise ValueError(f"temperature {temperature}: expected a finite number, 0 or more")


class SamplerChain(NativeOwner):
    """grammar (when given) -> greedy, or temperature -> a seeded draw. Each sample has its own."""

    def __init__(self, model: "NativeModel", temperature: float, seed: int, grammar: str | None = None):
        check_temperature(temperature)
        self._p = None
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if grammar is not None:
            g = lib.llama_sampler_init_grammar(model.vocab, grammar.encode("utf-8"), b"root")
            if not g:
                lib.llama_sampler_free(chain)
                raise ValueError("llama.cpp rejected the score grammar")
            lib.llama_sampler_chain_add(chain, g)  # first: later samplers must not remove every legal token
        if temperature == 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0x7FFFFFFF))
        self._p = chain

    def sample(self, ctx: "Context", idx: int) -> int:
        """Draw from the logits at batch index `idx` of the last decode, and accept the token."""
        return lib.llama_sampler_sample(self._p, ctx.ptr, idx)

    def sample_logits(self, logits) -> int:
        """`sample` on stored logits (numpy, n_vocab floats): the same candidates (every token, in id order),
        the same chain applied, the selected token accepted."""
        import numpy as np

        n = len(logits)
        data = (lib.llama_token_data * n)()
        view = np.ctypeslib.as_array(data).view(np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
        view["id"] = np.arange(n, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        cur = lib.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        lib.llama_sampler_apply(self._p, ctypes.byref(cur))
        if not 0 <= cur.selected < cur.size:
            raise ModelError(f"the sampler selected no token ({cur.selected} of {cur.size})")
        tok = int(cur.data[cur.selected].id)
        lib.llama_sampler_accept(self._p, tok)
        return tok

    def close(self) -> None:
        p, self._p = self._p, None  # forgotten before it is freed: a Ctrl-C between the two must not free it twice
        if p:
            lib.llama_sampler_free(p)
