"""The model a training stage starts from: a GGUF file (the GRM that `grm score` runs), a Hugging Face
model directory, or a hub name.

A GGUF is loaded by transformers and dequantized to full precision. transformers then marks the model
"quantized" and its Trainer refuses to train it, although the weights are plain floats: the marks are
cleared here. The q/k head layout and chat template are recorded so that an adapter trained on these
weights can be written back for llama.cpp (`export.py`) and prompts match scoring exactly (`chat.py`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from grm_cli.errors import InputError, ModelError


@dataclass(frozen=True)
class BaseInfo:
    """What an adapter needs to know of the weights it was trained on; saved beside every adapter."""

    ref: str  # what the user named: a .gguf path, a model directory, or a hub name
    kind: str  # "gguf" | "hf"
    arch: str  # llama.cpp's architecture name (general.architecture), e.g. "llama"
    n_head: int
    n_head_kv: int
    n_layer: int
    gguf_fingerprint: str | None  # cache.model_fingerprint of the GGUF, when trained from one

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "BaseInfo":
        return cls(**{k: obj.get(k) for k in cls.__dataclass_fields__})


# transformers' model_type -> llama.cpp's architecture name, where they differ
_ARCH_OF_MODEL_TYPE = {"mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3_text": "gemma3", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2"}


def _from_config(ref: str, kind: str, config, fingerprint: str | None) -> BaseInfo:
    text = getattr(config, "text_config", None) or config
    n_head = int(text.num_attention_heads)
    return BaseInfo(
        ref=ref,
        kind=kind,
        arch=_ARCH_OF_MODEL_TYPE.get(text.model_type, text.model_type),
        n_head=n_head,
        n_head_kv=int(getattr(text, "num_key_value_heads", None) or n_head),
        n_layer=int(text.num_hidden_layers),
        gguf_fingerprint=fingerprint,
    )


def _split_gguf(ref: str) -> tuple[Path, str] | None:
    p = Path(ref).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise InputError(f"{p}: no such GGUF file")
        return p.resolve().parent, p.name
    return None


def resolve_ref(ref: str | None) -> str:
    """None means grm's default model (SmolLM2's GGUF from its PyPI wheel); aliases resolve as for scoring."""
    if ref is not None and (Path(ref).expanduser().exists() or "/" in ref and not ref.startswith("hf://")):
        return ref
    from grm_cli.models.registry import resolve_model

    return str(resolve_model(ref, progress=True))


def load_for_training(ref: str, *, dtype: str = "float32"):
    """(model, tokenizer, BaseInfo). The model is a plain, trainable transformers model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise InputError(f"dtype {dtype!r}: expected float32, bfloat16 or float16")
    gguf = _split_gguf(ref)
    try:
        if gguf is not None:
            from grm_cli.models.fingerprint import model_fingerprint

            folder, name = gguf
            tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=torch_dtype)
            clear_quantization_marks(model)
            info = _from_config(str(folder / name), "gguf", model.config, model_fingerprint(folder / name))
        else:
            tokenizer = AutoTokenizer.from_pretrained(ref)
            model = AutoModelForCausalLM.from_pretrained(ref, dtype=torch_dtype)
            info = _from_config(ref, "hf", model.config, None)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{ref}: transformers could not load this model for training ({e})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, info


def clear_quantization_marks(model) -> None:
    """A dequantized GGUF is full precision, but transformers still calls it quantized and won't train it."""
    for obj in (model, getattr(model, "base_model", None)):
        if obj is None:
            continue
        if getattr(obj, "hf_quantizer", None) is not None:
            obj.hf_quantizer = None
        if getattr(obj, "is_quantized", False):
            obj.is_quantized = False
        for attr in ("quantization_method",):
            if hasattr(obj, attr):
                try:
                    setattr(obj, attr, None)
                except AttributeError:
                    pass
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def chat_layout_for(tokenizer):
    """The chat layout llama.cpp uses for this model: its template and its BOS/EOS texts."""
    from grm_cli.engine.chat import ChatLayout

    return ChatLayout(getattr(tokenizer, "chat_template", None), bos=tokenizer.bos_token or "", eos=tokenizer.eos_token or "")


def save_info(folder: Path, info: BaseInfo, **extra) -> None:
    (folder / "grm-adapter.json").write_text(json.dumps({"base": info.to_json(), **extra}, indent=2) + "\n", encoding="utf-8")


def read_info(folder: Path) -> dict:
    p = folder / "grm-adapter.json"
    if not p.is_file():
        raise InputError(f"{folder}: no grm-adapter.json here (expected an adapter folder written by `grm train rft` or `grm train rl`)")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{p}: line {e.lineno}: not valid JSON ({e.msg})") from None
