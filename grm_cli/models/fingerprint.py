"""What a model file is, as a short hash: the sample cache's key and the meta RM's check use it.

Hashing gigabytes at every load is too slow, and hashing only the ends of the file is not enough: a model
with an adapter merged in (`grm export --merge`) keeps the base's header and often its last tensors, and
re-quantised to the same type it keeps the size, so it would replay the base model's cached samples. So a
GGUF's fingerprint also covers the first bytes of EVERY tensor's data (found by walking the header, which
is small), and any other file falls back to evenly spaced samples.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

_END = 1 << 20  # bytes hashed at each end of the file
_SAMPLE = 4096  # bytes hashed at the start of each tensor (or at each fallback sample)
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> size
_STRING, _ARRAY = 8, 9


def _read(f, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)


def _skip_value(f, vtype: int) -> None:
    if vtype == _STRING:
        (n,) = _read(f, "<Q")
        f.seek(n, 1)
    elif vtype == _ARRAY:
        etype, count = _read(f, "<IQ")
        if etype in _SCALAR:
            f.seek(_SCALAR[etype] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, etype)
    elif vtype in _SCALAR:
        f.seek(_SCALAR[vtype], 1)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")


def gguf_tensor_offsets(path: str | Path) -> list[int]:
    """Absolute file offsets of every tensor's data in a GGUF (v2/v3), from the header alone."""
    with Path(path).open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        (version,) = _read(f, "<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is not supported")
        n_tensors, n_kv = _read(f, "<QQ")
        alignment = 32
        for _ in range(n_kv):
            (klen,) = _read(f, "<Q")
            key = f.read(klen)
            (vtype,) = _read(f, "<I")
            if key == b"general.alignment" and vtype == 4:
                (alignment,) = _read(f, "<I")
            else:
                _skip_value(f, vtype)
        offsets = []
        for _ in range(n_tensors):
            (nlen,) = _read(f, "<Q")
            f.seek(nlen, 1)
            (n_dims,) = _read(f, "<I")
            f.seek(8 * n_dims + 4, 1)  # the dims, then the tensor type
            (offset,) = _read(f, "<Q")
            offsets.append(offset)
        start = f.tell()
        data_start = start + (-start % alignment)
    return [data_start + o for o in offsets]


def model_fingerprint(path: str | Path) -> str:
    """Size, both ends of the file, and the start of every tensor's data (GGUF) or 256 spread samples."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"grm-fingerprint-2:{size}".encode())
    try:
        samples = gguf_tensor_offsets(p)
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
