"""An engine for any OpenAI-compatible server (vLLM, SGLang, llama.cpp's llama-server, llama-cpp-python's
server): the same prompts, parsing, voting, output and resume as the in-process engine, for scale-out.

Every sample is one chat completion request (each sample has its own response order and seed); up to
`concurrency` are in flight. 429, 5xx and timeouts are retried with exponential backoff (a Retry-After
header is honoured). The answer pre-fill goes as a final assistant message with vLLM/SGLang's
`continue_final_message`; servers that do not know it start a new assistant turn after it, which still
works for the score line. When a sample ends without a valid score line, the forced tail is a second
request pre-filled with the kept critique and the tail's prefix, constrained where the server can
(`grammar` for llama.cpp servers, `guided_regex` for vLLM); the one parser checks whatever comes back.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from grm_cli.engine.base import ContextOverflow, EngineBase, EngineStats, Generation, GenerationRequest, budget
from grm_cli.errors import InputError, ModelError
from grm_cli.io.http import ServerError, request_json

EXTENSIONS = ("continue_final_message", "add_generation_prompt", "grammar", "guided_regex")  # not in OpenAI's API
CHARS_PER_TOKEN = 3.0  # a cautious estimate: the server's tokenizer is not at hand


class OpenAIEngine(EngineBase):
    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        n_ctx: int = 4096,
        concurrency: int = 8,
        timeout: float = 300.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        use_n: bool = False,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"--base-url {base_url!r}: expected http://HOST:PORT/v1 (the server's OpenAI-compatible root)")
        if concurrency < 1:
            raise InputError(f"--concurrency {concurrency}: expected a positive number of requests in flight")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.use_n = use_n
        self._plain = False  # set when the server refused the non-standard fields
        self.retries = 0
        self.stats = EngineStats()
        self._lock = threading.Lock()
        self.model = model or self._first_model()
        self.name = self.model
        self.n_ctx_train = 0

    # -- transport -------------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None) -> dict:
        def count_retry() -> None:
            with self._lock:
                self.retries += 1

        return request_json(self.base_url + path, body, api_key=self.api_key, timeout=self.timeout, retries=self.max_retries,
                            backoff=self.backoff, on_retry=count_retry)

    def _first_model(self) -> str:
        try:
            answer = self._request("/models")
            models = answer.get("data") if isinstance(answer, dict) else None
        except ServerError as e:
            if e.status is None:
                raise ModelError(f"no server answers at {self.base_url} ({e}): is it running, and is --base-url right?") from None
            if e.status == 404:
                raise ModelError(f"{self.base_url}/models: not found (404): --base-url must be the server's OpenAI root, usually ending in /v1") from None
            raise ModelError(f"cannot list the server's models ({e}); pass --remote-model NAME") from None
        if not isinstance(models, list) or not models or not isinstance(models[0], dict) or "id" not in models[0]:
            raise ModelError(f"{self.base_url}/models lists no model id: pass --remote-model NAME")
        return str(models[0]["id"])

    # -- the Engine protocol ---------------------------------------------------------------------
    def count_tokens(self, messages: Sequence[dict], assistant_prefix: str = "") -> int:
        chars = sum(len(m.get("content", "")) for m in messages) + len(assistant_prefix)
        return int(chars / CHARS_PER_TOKEN) + 8 * len(messages) + 8

    def generate(self, req: GenerationRequest) -> Generation:
        return self.generate_many([req])[0]

    def generate_many(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        for r in requests:
            need = self.count_tokens(r.messages, r.assistant_prefix) + budget(r)
            if need > self.n_ctx:
                raise ContextOverflow(self.count_tokens(r.messages, r.assistant_prefix), need, self.n_ctx)
        started = time.perf_counter()
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            key = (json.dumps(r.messages), r.assistant_prefix, r.max_tokens, r.temperature, tuple(r.stop), r.tail is not None) if self.use_n else (i,)
            groups.setdefault(key, []).append(i)
        out: list[Generation | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for members, gens in zip(groups.values(), pool.map(lambda m: self._group([requests[i] for i in m]), groups.values())):
                for i, g in zip(members, gens):
                    out[i] = g
        self.stats.wall_seconds += time.perf_counter() - started
        return out  # type: ignore[return-value]

    def _group(self, reqs: list[GenerationRequest]) -> list[Generation]:
        """Samples of one prompt: one request with n where the server returns n choices (vLLM, SGLang);
        the samples a server did not return are asked for one by one, each with its own seed."""
        if len(reqs) == 1:
            return [self._one(reqs[0])]
        first = reqs[0]
        t0 = time.perf_counter()
        choices, usage = self._chat_choices(first.messages, first.assistant_prefix, max_tokens=first.max_tokens, temperature=first.temperature,
                                            seed=first.seed, stop=first.stop, extra={"n": len(reqs)})
        gens = []
        for req, (text, finish) in zip(reqs, choices):
            prompt_tokens = int(usage.get("prompt_tokens") or self.count_tokens(req.messages, req.assistant_prefix))
            gens.append(self._finish(req, text, finish, prompt_tokens, int(usage.get("completion_tokens") or 0) // max(1, len(choices)), t0))
        return gens + [self._one(r) for r in reqs[len(gens):]]

    def _chat(self, messages: Sequence[dict], prefix: str, *, max_tokens: int, temperature: float, seed: int, stop: Sequence[str] = (), extra: dict | None = None) -> tuple[str, str, dict]:
        choices, usage = self._chat_choices(messages, prefix, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop, extra=extra)
        return choices[0][0], choices[0][1], usage

    def _chat_choices(self, messages: Sequence[dict], prefix: str, *, max_tokens: int, temperature: float, seed: int, stop: Sequence[str] = (), extra: dict | None = None) -> tuple[list[tuple[str, str]], dict]:
        msgs = list(messages)
        body: dict = {"model": self.model, "messages": msgs, "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if prefix:
            msgs.append({"role": "assistant", "content": prefix})
            body.update(continue_final_message=True, add_generation_prompt=False)
        if stop:
            body["stop"] = list(stop)
        body.update(extra or {})
        if self._plain:
            body = {k: v for k, v in body.items() if k not in EXTENSIONS}
        try:
            answer = self._request("/chat/completions", body)
        except ServerError as e:
            # A strict server refuses fields it does not know (400 naming one): ask again without the extensions, from now on.
            if self._plain or e.status != 400 or not any(k in str(e) for k in EXTENSIONS if k in body):
                raise
            self._plain = True
            answer = self._request("/chat/completions", {k: v for k, v in body.items() if k not in EXTENSIONS})
        try:
            choices = [(c["message"].get("content") or "", str(c.get("finish_reason") or "stop")) for c in answer["choices"]]
            if not choices:
                raise IndexError
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(f"{self.base_url}/chat/completions: an answer without choices[].message: {str(answer)[:200]}") from None
        return choices, answer.get("usage") or {}

    def _one(self, req: GenerationRequest) -> Generation:
        t0 = time.perf_counter()
        text, finish, usage = self._chat(req.messages, req.assistant_prefix, max_tokens=req.max_tokens, temperature=req.temperature, seed=req.seed, stop=req.stop)
        prompt_tokens = int(usage.get("prompt_tokens") or self.count_tokens(req.messages, req.assistant_prefix))
        return self._finish(req, text, finish, prompt_tokens, int(usage.get("completion_tokens") or 0), t0)

    def _finish(self, req: GenerationRequest, text: str, finish: str, prompt_tokens: int, generated: int, t0: float) -> Generation:
        """The sample's text, with the forced score line asked for when the model left it out."""
        free_text, forced = text, False
        if req.tail is not None and req.tail.is_complete(text):
            finish = "answer"
        elif req.tail is not None:
            forced = True
            kept = req.tail.trim(text)
            kept += req.tail.prefix_for(kept)
            tail, _, tail_usage = self._chat(
                req.messages, req.assistant_prefix + kept, max_tokens=req.tail.max_tokens, temperature=req.temperature, seed=req.seed + 1,
                extra={"grammar": req.tail.grammar, "guided_regex": req.tail.regex},
            )
            text = kept + req.tail.answer(tail)
            generated += int(tail_usage.get("completion_tokens") or 0)
            finish = "forced"
        with self._lock:
            self.stats.requests += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.generated_tokens += generated
        return Generation(text=text, free_text=free_text, forced_tail=forced, finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=generated, seconds=time.perf_counter() - t0)


def api_key_from_env(var: str | None) -> str | None:
    """--api-key-env names the variable; the key itself never appears on a command line or in a log."""
    if not var:
        return None
    key = os.environ.get(var)
    if key is None:
        raise InputError(f"--api-key-env {var}: the environment variable is not set")
    return key
