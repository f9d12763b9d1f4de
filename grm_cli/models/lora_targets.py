"""Which LoRA targets reach llama.cpp, per architecture: what `grm train` may adapt so that `grm export`
writes an adapter llama.cpp applies (measured on tiny random models in tests/test_families.py).

- llama (Llama, Mistral), qwen2, qwen3, gemma2: every attention and MLP projection.
- phi3: its fused `qkv_proj` and `gate_up_proj`, `o_proj`, `down_proj` (there is no q_proj or gate_proj).
- deepseek2 (DeepSeek-V2/-Lite, DeepSeek-GRM-16B): adapter files only for `o_proj`. llama.cpp's graph
  multiplies `q_proj` (attn_q) and `kv_a_proj_with_mqa` (attn_kv_a_mqa) without its LoRA hook, so an
  adapter there loads and does nothing; `--merge` folds those two into the weights correctly. `kv_b_proj`
  is split and transposed by the converter, the routed experts are one stacked tensor per layer, and
  with transformers 5 PEFT saves the dense and shared-expert MLPs as a fused gate_up_proj with a per-module
  rank: none of these exports.
"""

from __future__ import annotations

from typing import Iterable

from grm_cli.errors import InputError

_ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

ADAPTER_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _ALL,
    "qwen2": _ALL,
    "qwen3": _ALL,
    "gemma2": _ALL,
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "deepseek2": ("o_proj",),
}
MERGE_ONLY_TARGETS: dict[str, tuple[str, ...]] = {"deepseek2": ("q_proj", "kv_a_proj_with_mqa")}


def check_lora_targets(arch: str, targets: Iterable[str], *, merge: bool = False) -> tuple[str, ...]:
    """The targets, or an InputError (one line) naming those that can be trained for this architecture.
    Architectures not listed are not checked (their targets are as the user gives them)."""
    targets = tuple(targets)
    if arch not in ADAPTER_TARGETS:
        return targets
    ok = ADAPTER_TARGETS[arch] + (MERGE_ONLY_TARGETS.get(arch, ()) if merge else ())
    bad = [t for t in targets if t not in ok]
    if bad:
        hint = ""
        if MERGE_ONLY_TARGETS.get(arch) and not merge and set(bad) <= set(MERGE_ONLY_TARGETS[arch]):
            hint = f" ({', '.join(MERGE_ONLY_TARGETS[arch])} only with `grm export --merge`)"
        raise InputError(f"LoRA targets {', '.join(bad)}: llama.cpp cannot run an adapter on them for {arch} models; "
                         f"the targets that can be trained are {', '.join(ok)}{hint}")
    return targets


def trainable_targets(arch: str, requested: Iterable[str], default: Iterable[str]) -> tuple[str, ...]:
    """What `grm train` adapts: the architecture's own list when the user kept the default (every
    projection of a llama-style model, which phi3 and deepseek2 do not have or cannot run), else the
    user's targets, checked."""
    requested, default = tuple(requested), tuple(default)
    if requested == default and arch in ADAPTER_TARGETS:
        return ADAPTER_TARGETS[arch]
    return check_lora_targets(arch, requested)
