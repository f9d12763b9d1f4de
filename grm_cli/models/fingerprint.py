"""What a model file is, as a short hash: the sample cache's key and the meta RM's check use it.

Hashing gigabytes at every load is too slow, and hashing only the ends of the file is not enough: a model
with an adapter merged in (`grm export --merge`) keeps the base's header and often its last tensors, and
re-quantised to the same type it keeps the size, so it would replay the base model's cached samples. So a
GGUF's fingerprint also covers the first bytes of EVERY tensor's data (found by walking the header, which
is small), and any other file falls back to evenly spaced samples.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from grm_cli.models.gguf import tensor_offsets

_END = 1 << 20  # bytes hashed at each end of the file
_SAMPLE = 4096  # bytes hashed at the start of each tensor (or at each fallback sample)
def model_fingerprint(path: str | Path) -> str:
    """Size, both ends of the file, and the start of every tensor's data (GGUF) or 256 spread samples."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"grm-fingerprint-2:{size}".encode())
    try:
        samples = tensor_offsets(p)
    except (ValueError, OSError):
        samples = [size * i // 256 for i in range(1, 256)]
    with p.open("rb") as f:
        h.update(f.read(_END))
        if size > _END:
            f.seek(max(size - _END, _END))
            h.update(f.read(_END))
        for offset in samples:
            f.seek(offset)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()[:32]
