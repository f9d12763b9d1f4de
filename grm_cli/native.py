"""The one module that imports llama.cpp's C API (llama-cpp-python's ctypes bindings, `llama_cpp`).

Every other module reaches the C functions as `lib.llama_*` through this module, and the few facts the
high-level `Llama` object holds only privately come through the functions below, so a llama-cpp-python
release that moves them breaks one place. Importing this loads the native library: import it lazily.
"""

from __future__ import annotations

import ctypes
import logging

import llama_cpp as lib

PYTHON_LOGGER = "llama-cpp-python"  # the bindings' own logger (llama.cpp's C log goes to stderr)


def model_pointer(llm) -> object:
    """The llama_model* under a high-level `Llama` (its public `model` property)."""
    return llm.model


def n_ctx_train(llm) -> int:
    """The context length the model was trained with, from the model file's metadata."""
    return int(lib.llama_model_n_ctx_train(llm.model))


def quiet_bindings_log() -> None:
    """Silence the bindings' Python-side log (what `verbose=False` would have set at load time)."""
    logging.getLogger(PYTHON_LOGGER).setLevel(logging.ERROR)


def loaded_adapter(llm):
    """The LoRA adapter `Llama(lora_path=...)` loaded, or None. The bindings expose it only as a private
    attribute; this is the one place that reads it."""
    return getattr(llm, "_lora_adapter", None)


def attach_adapter(ctx, adapter, scale: float) -> bool:
    """Apply a loaded adapter to another context on the same weights (llama.cpp applies adapters per
    context). False when llama.cpp refuses."""
    adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(scale)
    return lib.llama_set_adapters_lora(ctx, adapters, 1, scales) == 0
