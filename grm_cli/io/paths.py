"""Where grm keeps files between runs: the cache folder (samples, converted models)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$GRM_CACHE_DIR, else $XDG_CACHE_HOME/grm, else ~/.cache/grm."""
    env = os.environ.get("GRM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grm"
