"""The training stack is an optional extra, so that scoring users never install torch."""

from __future__ import annotations

import importlib

from grm_cli.errors import InputError

INSTALL_HINT = (
    "training needs the optional extra: pip install torch==2.13.0 'grm-cli[train]' "
    "(pin torch first on a CPU-only machine; on a GPU machine install the torch build for your CUDA)"
)


def require_training_stack() -> None:
    """Fail with one clear line, not an ImportError traceback, when torch/transformers/peft/trl are missing."""
    missing = []
    for name in ("torch", "transformers", "peft", "trl", "datasets"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise InputError(f"{', '.join(missing)} not installed: {INSTALL_HINT}")
