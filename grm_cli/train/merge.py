"""`grm export --merge`: the base GGUF with a LoRA folded into its weights, then quantized by llama.cpp.

Works in GGUF space, so no Hugging Face-to-GGUF converter is needed: every adapted weight is dequantized
(the `gguf` package), given its delta (scale * B @ A, with B's rows permuted for llama's q/k exactly as
for an adapter file), and written in f32; untouched tensors are copied as they are. The result is then
quantized to the requested type by `llama_model_quantize` (which re-quantizes already quantized tensors).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from grm_cli.errors import InputError, ModelError
from grm_cli.train.export import LoraWeights, gguf_tensor_name, in_llama_cpp_rows


def _deltas(weights: LoraWeights) -> dict[str, np.ndarray]:
    base = weights.base
    out = {}
    for hf_name, p in weights.pairs.items():
        b = in_llama_cpp_rows(hf_name, p.b * p.scale, base)
        out[gguf_tensor_name(hf_name, base.arch, base.n_layer)] = b @ p.a
    return out


def ftype_of(quant: str) -> int:
    from grm_cli.native import file_types

    types = file_types()
    value = types.get(quant.upper())
    if value is None:
        known = sorted(name for name in types if name != "F32")
        raise InputError(f"--quant {quant!r}: not a llama.cpp file type (known: {', '.join(known)}, F32)")
    return value


def write_merged_f32(weights: LoraWeights, base_gguf: Path, out: Path) -> int:
    """Copy `base_gguf` to `out` with the adapted tensors merged (f32). Returns how many were merged."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    if arch != weights.base.arch:
        raise InputError(f"{base_gguf}: architecture {arch!r}, but the adapter was trained on {weights.base.arch!r}")
    deltas = _deltas(weights)
    missing = sorted(set(deltas) - {t.name for t in reader.tensors})
    if missing:
        raise InputError(f"{base_gguf}: has no tensor {missing[0]} that the adapter changes (another model?)")
    writer = gguf.GGUFWriter(str(out), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if key == "general.file_type":
            value = int(gguf.LlamaFileType.ALL_F32)
        writer.add_key_value(key, value, vtype, sub_type=sub)
    merged = 0
    for t in reader.tensors:
        if t.name in deltas:
            w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(deltas[t.name].shape)
            writer.add_tensor(t.name, np.ascontiguousarray(w + deltas[t.name], dtype=np.float32))
            merged += 1
        else:
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return merged


def merge_into_gguf(weights: LoraWeights, base_gguf: Path, out: Path, *, quant: str = "Q8_0") -> Path:
    from grm_cli.native import quantize

    ftype = ftype_of(quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".f32.gguf", dir=str(out.parent))
    os.close(fd)
    try:
        write_merged_f32(weights, base_gguf, Path(tmp))
        rc = quantize(tmp, out, ftype, threads=os.cpu_count() or 1, allow_requantize=True)
        if rc != 0:
            raise ModelError(f"{out}: llama.cpp could not quantize the merged model to {quant} (code {rc})")
    finally:
        os.unlink(tmp)
    return out
