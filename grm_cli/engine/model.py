"""The engines' model object: one GGUF loaded in-process, with what grm knows of it.

`LlamaEngine`, `BatchedLlamaEngine` and the side contexts (`hidden.py`, `probe.py`) each hold one `Model`:
the weights and vocabulary in llama.cpp (`native.NativeModel`), the chat layout, and the name and
fingerprint that results and the sample cache carry. Importing this does not load llama.cpp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from grm_cli.engine.chat import ChatLayout
from grm_cli.errors import ModelError
from grm_cli.models.fingerprint import model_fingerprint
from grm_cli.models.gguf import check_adapter_file

KV_TYPES = ("f16", "q8_0", "q4_0")


def gpu_offload_supported() -> bool:
    from grm_cli.native import gpu_offload_supported as supported

    return supported()


class Model:
    """One GGUF (and LoRA adapter) loaded once. `n_ctx`: the context of the high-level `Llama` it is
    loaded through (where `LlamaEngine` generates; other engines make their own contexts)."""

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
        from grm_cli.native import NativeModel

        self.native = NativeModel(path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=n_threads, kv_type=kv_type, flash_attn=flash_attn,
                                  use_mmap=use_mmap, use_mlock=use_mlock, verbose=verbose, lora=lora, lora_scale=lora_scale)
        self.path, self.lora, self.lora_scale, self.n_gpu_layers = path, lora, lora_scale, n_gpu_layers
        self.llm = self.native.llm  # llama-cpp-python's high-level `Llama`
        self.n_ctx, self.n_ctx_train = self.native.n_ctx, self.native.n_ctx_train
        md = self.native.metadata
        self.name = md.get("general.name") or path.stem
        if lora is not None:
            # results and resumed files must never mix the base model's samples with the adapted model's
            self.name += f" + LoRA {lora.name} ({model_fingerprint(lora)[:8]}, scale {lora_scale:g})"
        self.layout = ChatLayout(md.get("tokenizer.chat_template") or chat_template, bos=self.native.bos_text, eos=self.native.eos_text)

    @property
    def fingerprint(self) -> str:
        """What decides this model's outputs: the GGUF's content, and the adapter's with its scale."""
        fp = model_fingerprint(self.path)
        if self.lora is not None:
            fp += f"+lora:{model_fingerprint(self.lora)}@{self.lora_scale:g}"
        return fp

    def render(self, messages: Sequence[dict], assistant_prefix: str = "") -> str:
        """The model's own chat template with the generation prompt, then the pre-filled answer start."""
        return self.layout.prompt(messages, assistant_prefix)

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of a text; a rendered chat writes its own special tokens (BOS included where the model
        wants one). special=False for generated text, where "<|im_end|>" is just characters."""
        return self.native.tokenize(text, special=special)

    def continuation(self, text: str, *, special: bool) -> list[int]:
        """Tokens that spell exactly `text` after what the model wrote (no space prefix: `engine.tokens`)."""
        from grm_cli.engine.tokens import continuation_tokens

        return continuation_tokens(lambda t: self.tokenize(t, special=special), lambda toks: self.native.detokenize(toks, special=special), text)

    def tokens(self, messages: Sequence[dict], assistant_prefix: str = "") -> list[int]:
        """The rendered chat's tokens: exactly what an engine decodes for this request."""
        return self.tokenize(self.render(messages, assistant_prefix))


def model_of(engine) -> Model:
    """The loaded model of an in-process engine (or of the sample cache over one), or a Model itself."""
    for part in (engine, getattr(engine, "inner", None)):
        if isinstance(part, Model):
            return part
        if isinstance(getattr(part, "model", None), Model):
            return part.model
    raise ModelError(f"{type(engine).__name__}: this needs the in-process llama.cpp engine (--backend llama)")
