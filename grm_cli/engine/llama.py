"""In-process llama.cpp engine (llama-cpp-python's high-level `Llama`).

Between calls `Llama` keeps the KV cache of the longest common token prefix, so the k samples of one
record re-evaluate only what differs, and the forced answer line costs only its own few tokens.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from grm_cli.engine.base import ContextOverflow, EngineBase, EngineStats, Generation, GenerationRequest, budget
from grm_cli.engine.model import KV_TYPES, Model, gpu_offload_supported

__all__ = ["KV_TYPES", "LlamaEngine", "gpu_offload_supported"]


class LlamaEngine(EngineBase):
    """Loads one GGUF once; generates one sample per call."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, **load):
        """`load`: how the weights are loaded, exactly `Model`'s keywords (n_gpu_layers, n_threads, kv_type,
        flash_attn, use_mmap, use_mlock, verbose, lora_path, lora_scale, chat_template)."""
        self.model = Model(model_path, n_ctx=n_ctx, **load)
        m = self.model
        self.llm = m.llm  # llama-cpp-python's `Llama`: its context is where this engine generates
        self.stats = EngineStats()  # prompt evaluation and decoding are not told apart here
        self.path, self.name, self.layout, self.lora, self.lora_scale = m.path, m.name, m.layout, m.lora, m.lora_scale
        self.n_ctx, self.n_ctx_train, self.n_gpu_layers = m.n_ctx, m.n_ctx_train, m.n_gpu_layers

    @property
    def fingerprint(self) -> str:
        """What decides this engine's outputs: the GGUF's content, and the adapter's with its scale."""
        return self.model.fingerprint

    # -- prompts ---------------------------------------------------------------------------------
    def render(self, messages: Sequence[dict], assistant_prefix: str = "") -> str:
        """The model's own chat template with the generation prompt, then the pre-filled answer start."""
        return self.layout.prompt(messages, assistant_prefix)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of a rendered text (the chat template writes its own special tokens, BOS included
        where the model wants one): exactly what the engine decodes."""
        return self.model.tokenize(text)

    _tokens = tokenize  # the old name, still used by tests and benchmarks/bench_voting.py

    def count_tokens(self, messages: Sequence[dict], assistant_prefix: str = "") -> int:
        return len(self.tokenize(self.render(messages, assistant_prefix)))

    # -- sampling --------------------------------------------------------------------------------
    def _sampling(self, temperature: float, seed: int) -> dict:
        # The paper's sampling is plain temperature (no top-k/top-p truncation); 0 is greedy.
        from grm_cli.native import check_temperature

        check_temperature(temperature)
        return dict(temperature=temperature, seed=seed & 0x7FFFFFFF, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)

    def generate(self, req: GenerationRequest) -> Generation:
        t0 = time.perf_counter()
        prompt = self.tokenize(self.render(req.messages, req.assistant_prefix))
        needed = len(prompt) + budget(req)
        if needed > self.n_ctx:
            raise ContextOverflow(len(prompt), needed, self.n_ctx)

        text, n_gen, finish = "", 0, "length"
        stream = self.llm.create_completion(
            prompt, max_tokens=req.max_tokens, stop=list(req.stop) or None, stream=True, **self._sampling(req.temperature, req.seed)
        )
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text += choice["text"]
                n_gen += 1
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if req.tail is not None and req.tail.is_complete(text):
                    finish = "answer"
                    break
        finally:
            stream.close()
        free_text = text
        forced = False
        if req.tail is not None and not req.tail.is_complete(text):
            from grm_cli.native import llama_grammar

            forced = True
            kept = req.tail.trim(text)
            kept += req.tail.prefix_for(kept)
            grammar = llama_grammar(req.tail.grammar)
            out = self.llm.create_completion(
                prompt + self.model.continuation(kept, special=True),
                max_tokens=req.tail.max_tokens,
                grammar=grammar,
                **self._sampling(req.temperature, req.seed + 1),
            )
            text = kept + out["choices"][0]["text"]
            n_gen += out["usage"]["completion_tokens"]
            finish = "forced"
        self.stats.requests += 1
        self.stats.prompt_tokens += len(prompt)
        self.stats.generated_tokens += n_gen
        self.stats.wall_seconds += time.perf_counter() - t0
        return Generation(
            text=text,
            free_text=free_text,
            forced_tail=forced,
            finish_reason=finish,
            prompt_tokens=len(prompt),
            completion_tokens=n_gen,
            seconds=time.perf_counter() - t0,
        )
