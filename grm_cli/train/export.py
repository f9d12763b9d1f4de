"""A PEFT LoRA adapter, written as a llama.cpp adapter GGUF (`grm export`), so `grm score --lora` runs it.

- Tensor names come from the `gguf` package's map of transformers names to GGUF names
  (`model.layers.3.self_attn.q_proj` -> `blk.3.attn_q.weight`), with `.lora_a` / `.lora_b` appended;
  PEFT's shapes are kept (A: rank x in, B: out x rank), as llama.cpp expects.
- llama.cpp stores the llama architecture's q/k weights with their rows permuted per head (interleaved
  rotary pairs; transformers keeps the halves apart). B's rows are the output rows of q/k, so they get the
  same permutation; without it the adapter moves the wrong rotary dimensions.
- An RL adapter trained on top of a merged RFT adapter is a stack; its deltas add up, and the sum of two
  LoRAs is one LoRA of the summed rank ([A1; A2], [s1*B1, s2*B2], scale 1), so the export is one file.
- llama.cpp scales by alpha / rank; rsLoRA's alpha / sqrt(rank) is written as the alpha that gives it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grm_cli.errors import InputError
from grm_cli.train.base_model import BaseInfo, read_info

PERMUTED_QK_ARCHS = ("llama",)  # llama.cpp's converter permutes q/k rows for these
# Weights whose matmul llama.cpp's graph does without its LoRA hook (llama-cpp-python 0.3.36): an adapter
# on them would load and silently do nothing. Measured in tests/test_families.py; `--merge` folds them in.
LORA_NOT_APPLIED = {"deepseek2": ("attn_q", "attn_kv_a_mqa")}


@dataclass
class LoraPair:
    a: np.ndarray  # rank x in
    b: np.ndarray  # out x rank
    scale: float  # the delta is scale * b @ a


@dataclass
class LoraWeights:
    """Adapter deltas keyed by the transformers weight name (`model.layers.0.self_attn.q_proj.weight`)."""

    pairs: dict[str, LoraPair]
    base: BaseInfo


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Transformers' q/k row order -> llama.cpp's: within each head, rows (i, i + d/2) become (2i, 2i + 1)."""
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise InputError(f"a q/k LoRA B of {rows} rows does not split into {n_head} heads of rotary pairs")
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def in_llama_cpp_rows(hf_name: str, b: np.ndarray, base: BaseInfo) -> np.ndarray:
    """B's rows in the order llama.cpp stores this weight's output rows (q/k of llama are permuted per head)."""
    if base.arch in PERMUTED_QK_ARCHS:
        if hf_name.endswith("self_attn.q_proj.weight"):
            return permute_rows(b, base.n_head)
        if hf_name.endswith("self_attn.k_proj.weight"):
            return permute_rows(b, base.n_head_kv)
    return b


def _load_tensors(folder: Path) -> dict[str, np.ndarray]:
    st = folder / "adapter_model.safetensors"
    if not st.is_file():
        raise InputError(f"{folder}: no adapter_model.safetensors (expected a PEFT adapter folder)")
    try:
        from safetensors.numpy import load_file

        return load_file(str(st))
    except (TypeError, ValueError):  # bfloat16 has no numpy dtype: go through torch
        import torch
        from safetensors.torch import load_file as load_torch

        return {k: v.to(torch.float32).numpy() for k, v in load_torch(str(st)).items()}


def read_peft_adapter(folder: str | Path) -> LoraWeights:
    """One adapter folder (PEFT files + grm-adapter.json), with any adapter it was stacked on folded in."""
    folder = Path(folder)
    info = read_info(folder)
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file():
        raise InputError(f"{folder}: no adapter_config.json (expected a PEFT adapter folder)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    r, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    scale = alpha / (math.sqrt(r) if cfg.get("use_rslora") else r)
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise InputError(f"{folder}: per-module ranks or alphas (rank_pattern/alpha_pattern) are not supported by the export")
    tensors = _load_tensors(folder)
    pairs: dict[str, LoraPair] = {}
    for key, a in tensors.items():
        if "lora_embedding" in key or "lora_magnitude" in key:
            raise InputError(f"{folder}: {key}: only LoRA on linear layers exports to llama.cpp (no embedding LoRA, no DoRA)")
        if ".lora_A." not in key:
            continue
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        module = key.split(".lora_A.")[0]
        for prefix in ("base_model.model.",):
            if module.startswith(prefix):
                module = module[len(prefix):]
        pairs[module + ".weight"] = LoraPair(a.astype(np.float32), b.astype(np.float32), scale)
    if not pairs:
        raise InputError(f"{folder}: the adapter holds no LoRA weights")
    weights = LoraWeights(pairs, BaseInfo.from_json(info["base"]))
    below = info.get("stacked_on")
    if below:
        lower = read_peft_adapter((folder / below) if not Path(below).is_absolute() else Path(below))
        weights = stack(lower, weights)
    return weights


def stack(lower: LoraWeights, upper: LoraWeights) -> LoraWeights:
    """Two adapters as one: where both touch a weight, ranks concatenate and the scales move into B."""
    pairs = dict(lower.pairs)
    for name, up in upper.pairs.items():
        low = pairs.get(name)
        if low is None:
            pairs[name] = up
            continue
        a = np.concatenate([low.a, up.a], axis=0)
        b = np.concatenate([low.b * low.scale, up.b * up.scale], axis=1)
        pairs[name] = LoraPair(a, b, 1.0)
    return LoraWeights(pairs, upper.base)


def gguf_tensor_name(hf_name: str, arch: str, n_layer: int) -> str:
    import gguf

    arch_ids = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in arch_ids:
        raise InputError(f"architecture {arch!r} is unknown to the gguf package: cannot name its tensors for llama.cpp")
    name = gguf.get_tensor_name_map(arch_ids[arch], n_layer).get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise InputError(f"{hf_name}: no llama.cpp tensor for this weight in architecture {arch!r}")
    return name


def write_adapter_gguf(weights: LoraWeights, out: str | Path, *, name: str = "grm-lora") -> Path:
    """The llama.cpp adapter file. Every pair's scale goes into B so one alpha fits all (alpha = rank)."""
    import gguf

    out = Path(out)
    base = weights.base
    ranks = {p.a.shape[0] for p in weights.pairs.values()}
    rank = max(ranks)
    for hf_name in sorted(weights.pairs):
        target = gguf_tensor_name(hf_name, base.arch, base.n_layer)
        if target.split(".")[2] in LORA_NOT_APPLIED.get(base.arch, ()):  # blk.N.attn_q.weight
            raise InputError(f"{hf_name}: llama.cpp does not apply a LoRA adapter to {target} in {base.arch} models: "
                             f"export with --merge, or train other targets (not {', '.join(LORA_NOT_APPLIED[base.arch])})")
    w = gguf.GGUFWriter(str(out), base.arch)
    w.add_string("general.type", "adapter")
    w.add_string("general.name", name)
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(rank))
    for hf_name in sorted(weights.pairs):
        p = weights.pairs[hf_name]
        a = p.a
        b = in_llama_cpp_rows(hf_name, p.b * (p.scale * p.a.shape[0] / rank), base)  # llama.cpp multiplies by alpha / (this tensor's rank)
        target = gguf_tensor_name(hf_name, base.arch, base.n_layer)
        w.add_tensor(target + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        w.add_tensor(target + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
