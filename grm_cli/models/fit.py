"""How many layers of a GGUF model fit in free GPU memory: a pure rule over numbers from the file.

llama.cpp offloads the LAST n layers (and, with n = n_layer + 1, the output layer too); each offloaded
layer brings its weights and its share of the KV cache. The input embedding stays in host memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30

# Bytes per KV-cache element for the cache types llama.cpp users pick (q8_0: 34 bytes / 32, q4_0: 18 / 32).
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
SAFETY_FRACTION = 0.05  # of free memory, for allocator slack and other processes
SAFETY_BYTES = 512 * MiB  # CUDA context and llama.cpp's own buffers


@dataclass(frozen=True)
class ModelShape:
    """What the fitting rule needs from a GGUF file."""

    name: str
    architecture: str
    n_layer: int
    layer_bytes: tuple[int, ...]  # weights of each repeating block, by index
    output_bytes: int  # output head + final norm (offloaded only when every layer is)
    host_bytes: int  # input embedding and anything else that stays on the host
    n_embd: int
    n_vocab: int
    kv_width: int  # per token per layer: K width + V width (elements)
    ctx_train: int

    @property
    def weight_bytes(self) -> int:
        return sum(self.layer_bytes) + self.output_bytes + self.host_bytes


def kv_bytes_per_layer(shape: ModelShape, n_ctx: int, n_seq: int = 1, kv_type: str = "f16") -> int:
    return int(n_ctx * n_seq * shape.kv_width * KV_TYPE_BYTES[kv_type])


def compute_buffer_bytes(shape: ModelShape, n_ctx: int, n_batch: int = 512) -> int:
    """A generous estimate of llama.cpp's GPU scratch: the logits of one batch and its attention scores."""
    return int(n_batch * shape.n_vocab * 4 + n_batch * n_ctx * 4 * 4 + 64 * MiB)


@dataclass(frozen=True)
class Fit:
    n_gpu_layers: int  # the value to pass to llama.cpp (n_layer + 1 = everything, output included)
    gpu_bytes: int  # estimated GPU memory for that choice
    budget_bytes: int  # free memory minus the safety margins
    all_fit: bool

    def describe(self, shape: ModelShape) -> str:
        if self.all_fit:
            return f"all {shape.n_layer} layers and the output on the GPU ({self.gpu_bytes / GiB:.2f} of {self.budget_bytes / GiB:.2f} GiB usable)"
        if self.n_gpu_layers == 0:
            return f"nothing fits in {max(self.budget_bytes, 0) / GiB:.2f} GiB usable GPU memory: running on the CPU"
        return f"{self.n_gpu_layers} of {shape.n_layer} layers on the GPU ({self.gpu_bytes / GiB:.2f} of {self.budget_bytes / GiB:.2f} GiB usable), the rest on the CPU"


def fit_layers(shape: ModelShape, free_bytes: int, n_ctx: int, *, n_seq: int = 1, kv_type: str = "f16") -> Fit:
    """The largest offload whose weights, KV cache and scratch fit in `free_bytes` with a safety margin."""
    budget = int(free_bytes * (1 - SAFETY_FRACTION)) - SAFETY_BYTES - compute_buffer_bytes(shape, n_ctx)
    kv = kv_bytes_per_layer(shape, n_ctx, n_seq, kv_type)
    full = sum(shape.layer_bytes) + shape.n_layer * kv + shape.output_bytes
    if full <= budget:
        return Fit(shape.n_layer + 1, full, budget, True)
    used = 0
    for count, layer in enumerate(reversed(shape.layer_bytes)):
        if used + layer + kv > budget:
            return Fit(count, used, budget, False)
        used += layer + kv
    return Fit(shape.n_layer, used, budget, False)


_BLOCK = re.compile(r"^blk\.(\d+)\.")


def read_shape(path: str | Path) -> ModelShape:
    """Read layer sizes and attention shape from a GGUF header (memory-mapped; weights are not loaded)."""
    from grm_cli.models.gguf import StringArray, read_header

    header = read_header(path)
    field = header.get
    arch = field("general.architecture", "llama")
    n_layer = int(field(f"{arch}.block_count", 0))
    n_embd = int(field(f"{arch}.embedding_length", 0))
    n_head = field(f"{arch}.attention.head_count", 1)
    n_head_kv = field(f"{arch}.attention.head_count_kv", n_head)
    n_head = n_head if isinstance(n_head, int) else max(n_head)
    n_head_kv = n_head_kv if isinstance(n_head_kv, int) else max(n_head_kv)
    k_len = int(field(f"{arch}.attention.key_length", n_embd // max(n_head, 1)))
    v_len = int(field(f"{arch}.attention.value_length", k_len))
    tokens = field("tokenizer.ggml.tokens")
    n_vocab = len(tokens) if isinstance(tokens, (StringArray, list)) else 32000
    layers = [0] * n_layer
    output = host = embd = 0
    names = {t.name for t in header.tensors}
    for t in header.tensors:
        if t.name == "token_embd.weight":
            embd = int(t.n_bytes)
        m = _BLOCK.match(t.name)
        if m and int(m.group(1)) < n_layer:
            layers[int(m.group(1))] += int(t.n_bytes)
        elif t.name.startswith("output"):
            output += int(t.n_bytes)
        else:
            host += int(t.n_bytes)
    if "output.weight" not in names:  # tied embeddings: llama.cpp copies the embedding to the output's device
        output += embd
    return ModelShape(
        name=str(field("general.name", Path(path).stem)),
        architecture=arch,
        n_layer=n_layer,
        layer_bytes=tuple(layers),
        output_bytes=output,
        host_bytes=host,
        n_embd=n_embd,
        n_vocab=n_vocab,
        kv_width=n_head_kv * (k_len + v_len),
        ctx_train=int(field(f"{arch}.context_length", 0)),
    )
