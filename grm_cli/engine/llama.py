"""In-process llama.cpp engine (llama-cpp-python's high-level `Llama`).

Between calls `Llama` keeps the KV cache of the longest common token prefix, so the k samples of one
record re-evaluate only what differs, and the forced answer line costs only its own few tokens.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from grm_cli.engine.base import ContextOverflow, EngineStats, Generation, GenerationRequest, budget
from grm_cli.engine.chat import ChatLayout
from grm_cli.errors import ModelError
from grm_cli.models.fingerprint import model_fingerprint

KV_TYPES = ("f16", "q8_0", "q4_0")



@contextlib.contextmanager
def captured_stderr(enabled: bool = True) -> Iterator[list[str]]:
    """Hold llama.cpp's stderr chatter, from C (fd 2) and from llama-cpp-python's log callback
    (sys.stderr), and hand it back so that a failure can say what llama.cpp said."""
    box: list[str] = []
    if not enabled:
        yield box
        return
    sys.stderr.flush()
    saved_fd, saved_py = os.dup(2), sys.stderr
    with tempfile.TemporaryFile() as c_log, tempfile.TemporaryFile("w+", encoding="utf-8") as py_log:
        os.dup2(c_log.fileno(), 2)
        sys.stderr = py_log
        try:
            yield box
        finally:
            sys.stderr = saved_py
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            c_log.seek(0)
            py_log.seek(0)
            box.append(c_log.read().decode("utf-8", "replace") + py_log.read())


def check_adapter_file(lora: Path, model: Path) -> None:
    """A clear error before llama.cpp's: the file must be a LoRA adapter GGUF for this model's architecture."""
    import gguf

    if not lora.is_file():
        raise ModelError(f"{lora}: no such adapter file (expected a LoRA adapter .gguf, as `grm export` writes)")
    try:
        meta = {}
        for p in (lora, model):
            r = gguf.GGUFReader(str(p))
            fields = {k: f.contents() for k, f in r.fields.items() if k in ("general.type", "general.architecture", "adapter.type")}
            meta[p] = fields
    except Exception as e:  # not a GGUF at all, or a truncated one
        raise ModelError(f"{lora}: not a readable GGUF file ({e})") from None
    a, m = meta[lora], meta[model]
    if a.get("general.type") != "adapter" or a.get("adapter.type") != "lora":
        raise ModelError(f"{lora}: not a LoRA adapter GGUF (general.type={a.get('general.type')!r}); make one with `grm export ADAPTER_DIR --to adapter.gguf`")
    if a.get("general.architecture") != m.get("general.architecture"):
        raise ModelError(f"{lora}: an adapter for architecture {a.get('general.architecture')!r}, but {model.name} is {m.get('general.architecture')!r}")


def gpu_offload_supported() -> bool:
    from grm_cli.native import lib

    return bool(lib.llama_supports_gpu_offload())


class LlamaEngine:
    """Loads one GGUF once; generates one sample per call."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_gpu_layers: int | None = None,
        n_threads: int | None = None,
        kv_type: str = "f16",
        flash_attn: bool = False,
        use_mmap: bool = True,
        use_mlock: bool = False,
        verbose: bool = False,
        lora_path: str | Path | None = None,
        lora_scale: float = 1.0,
        chat_template: str | None = None,
    ):
        """chat_template: the chat layout to use when the GGUF carries none (a judge protocol's own, as
        Auto-J's Llama-2 layout); a GGUF's own template always wins."""
        from llama_cpp import Llama

        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file (expected a .gguf file)")
        lora = Path(lora_path) if lora_path is not None else None
        if lora is not None:
            check_adapter_file(lora, path)
        if n_gpu_layers is None:
            n_gpu_layers = -1 if gpu_offload_supported() else 0
        if kv_type not in KV_TYPES:
            raise ValueError(f"kv_type {kv_type!r}: expected one of {', '.join(KV_TYPES)}")
        if kv_type != "f16" and not flash_attn:
            # llama.cpp refuses a quantized V cache without flash attention; say so before it fails obscurely.
            raise ValueError(f"kv_type {kv_type} needs flash_attn=True (llama.cpp quantizes the V cache only with flash attention)")
        from grm_cli.native import lib, n_ctx_train

        kv_ggml = getattr(lib, f"GGML_TYPE_{kv_type.upper()}")
        failure: Exception | None = None
        with captured_stderr(not verbose) as log:
            try:
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=n_threads,
                    type_k=kv_ggml,
                    type_v=kv_ggml,
                    flash_attn=flash_attn,
                    use_mmap=use_mmap,
                    use_mlock=use_mlock,
                    lora_path=str(lora) if lora is not None else None,
                    lora_scale=lora_scale,
                    # Loading verbosely into the captured stderr keeps llama.cpp's reason for a failure.
                    verbose=True,
                )
            except Exception as e:  # llama.cpp raises a bare ValueError; its log holds the reason
                failure = e
        if not verbose:
            from grm_cli.native import quiet_bindings_log

            quiet_bindings_log()
            if failure is None:
                self.llm.verbose = False
        if failure is not None:
            reasons = [ln.strip() for ln in "".join(log).splitlines() if ln.strip() and not ln.startswith(("llama_model_loader", "print_info", "load", "create_tensor"))]
            words = ("error", "fail", "does not", "out of memory", "unable", "invalid", "unknown")
            tail = [ln for ln in reasons if any(w in ln.lower() for w in words)][-3:] or reasons[-2:]
            detail = ("; llama.cpp said: " + " | ".join(tail)) if tail else ""
            what = f"{path} with the adapter {lora}" if lora is not None else str(path)
            raise ModelError(f"{what}: llama.cpp could not load this model ({failure}){detail}")
        self.path = path
        self.lora, self.lora_scale = lora, lora_scale
        self.stats = EngineStats()  # prompt evaluation and decoding are not told apart here
        self.n_ctx = self.llm.n_ctx()
        self.n_ctx_train = n_ctx_train(self.llm)
        self.n_gpu_layers = n_gpu_layers
        md = self.llm.metadata
        self.name = md.get("general.name") or path.stem
        if lora is not None:
            # results and resumed files must never mix the base model's samples with the adapted model's
            self.name += f" + LoRA {lora.name} ({model_fingerprint(lora)[:8]}, scale {lora_scale:g})"
        self.layout = ChatLayout(md.get("tokenizer.chat_template") or chat_template, bos=self._token_text(self.llm.token_bos()), eos=self._token_text(self.llm.token_eos()))

    @property
    def fingerprint(self) -> str:
        """What decides this engine's outputs: the GGUF's content, and the adapter's with its scale."""
        fp = model_fingerprint(self.path)
        if self.lora is not None:
            fp += f"+lora:{model_fingerprint(self.lora)}@{self.lora_scale:g}"
        return fp

    def attach_adapter(self, ctx) -> None:
        """Apply the loaded LoRA to another context on these weights (llama.cpp applies adapters per context)."""
        from grm_cli.native import attach_adapter, loaded_adapter

        adapter = loaded_adapter(self.llm)
        if adapter is None:
            return
        if not attach_adapter(ctx, adapter, self.lora_scale):
            raise ModelError(f"{self.lora}: llama.cpp could not apply this adapter to a new context")

    def _token_text(self, tok: int) -> str:
        if tok < 0:
            return ""
        return self.llm.detokenize([tok], special=True).decode("utf-8", "replace")

    # -- prompts ---------------------------------------------------------------------------------
    def render(self, messages: Sequence[dict], assistant_prefix: str = "") -> str:
        """The model's own chat template with the generation prompt, then the pre-filled answer start."""
        return self.layout.prompt(messages, assistant_prefix)

    def _tokens(self, text: str) -> list[int]:
        # The chat template writes its own special tokens (BOS included where the model wants one).
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages: Sequence[dict], assistant_prefix: str = "") -> int:
        return len(self._tokens(self.render(messages, assistant_prefix)))

    # -- sampling --------------------------------------------------------------------------------
    def _sampling(self, temperature: float, seed: int) -> dict:
        # The paper's sampling is plain temperature (no top-k/top-p truncation); 0 is greedy.
        if not (temperature >= 0 and temperature != float("inf")):  # NaN or inf aborts llama.cpp's process
            raise ValueError(f"temperature {temperature}: expected a finite number, 0 or more")
        return dict(temperature=temperature, seed=seed & 0x7FFFFFFF, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)

    def generate(self, req: GenerationRequest) -> Generation:
        t0 = time.perf_counter()
        prompt = self._tokens(self.render(req.messages, req.assistant_prefix))
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
            from llama_cpp import LlamaGrammar

            forced = True
            kept = req.tail.trim(text)
            kept += req.tail.prefix_for(kept)
            grammar = LlamaGrammar.from_string(req.tail.grammar, verbose=False)
            out = self.llm.create_completion(
                prompt + self._tokens(kept),
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
