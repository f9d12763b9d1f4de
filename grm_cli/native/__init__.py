"""The one package that imports llama.cpp's C API (llama-cpp-python's ctypes bindings, `llama_cpp`).

Its owners, after llama-cpp-python's `_internals`: `NativeModel` (weights, vocabulary, adapter), `Context`
(KV cache, decoding, logits) with its `Batch`, and `SamplerChain`. Every other module reaches llama.cpp
through them and the functions below, so a llama-cpp-python release that moves something breaks one place.
Importing this loads the native library: import it lazily.
"""

from __future__ import annotations

import os

import llama_cpp as lib

from grm_cli.native.context import Batch, Context, DecodeError
from grm_cli.native.log import captured_stderr, quiet_bindings_log
from grm_cli.native.model import NativeModel, llama_grammar
from grm_cli.native.sampler import SamplerChain, check_temperature

__all__ = ["Batch", "Context", "DecodeError", "NativeModel", "SamplerChain", "captured_stderr", "check_temperature", "file_types",
           "gpu_offload_supported", "lib", "llama_grammar", "max_parallel_sequences", "quantize", "quiet_bindings_log", "system_info"]


def gpu_offload_supported() -> bool:
    """llama.cpp was built with a GPU backend (CUDA, Metal, Vulkan, ROCm...)."""
    return bool(lib.llama_supports_gpu_offload())


def system_info() -> str:
    """llama.cpp's one-line report of the backends and CPU features it was built with."""
    return lib.llama_print_system_info().decode("utf-8", "replace")


def max_parallel_sequences() -> int:
    """The most sequences one context may hold."""
    return int(lib.llama_max_parallel_sequences())


def file_types() -> dict[str, int]:
    """Quant type name (as llama.cpp's llama-quantize spells it: Q8_0, Q4_K_M, F16, ... and F32) -> llama_ftype."""
    out = {name[len("LLAMA_FTYPE_MOSTLY_"):]: int(getattr(lib, name)) for name in dir(lib) if name.startswith("LLAMA_FTYPE_MOSTLY_")}
    out["F32"] = int(lib.LLAMA_FTYPE_ALL_F32)
    return out


def quantize(src: str | os.PathLike, dst: str | os.PathLike, ftype: int, *, threads: int, allow_requantize: bool = False) -> int:
    """llama.cpp's llama_model_quantize: `src` GGUF written to `dst` as `ftype` (threads 0: llama.cpp's
    choice). Returns its code, 0 on success."""
    params = lib.llama_model_quantize_default_params()
    params.ftype = ftype
    if allow_requantize:
        params.allow_requantize = True
    params.nthread = threads
    return int(lib.llama_model_quantize(str(src).encode(), str(dst).encode(), params))
