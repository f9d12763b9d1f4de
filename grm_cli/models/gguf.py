"""The one reader of GGUF headers: the magic, the tensors' data offsets (a small header walk, no weights
read), and the metadata fields through PyPI's `gguf` reader (memory-mapped). The fingerprint, the GPU fit,
the adapter check and the registry's file check all read headers here.
"""

from __future__ import annotations

import struct
from pathlib import Path

from grm_cli.errors import ModelError

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


def tensor_offsets(path: str | Path) -> list[int]:
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


def check_gguf(path: Path) -> Path:
    """`path` if it starts with GGUF's magic, else a clear error (a download that is not a model)."""
    with Path(path).open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file (llama.cpp models start with the bytes 'GGUF')")
    return Path(path)


def open_reader(path: str | Path, what: str = "the GGUF header"):
    """PyPI gguf's reader over the file (memory-mapped: weights are not loaded); a broken file is a ModelError."""
    import gguf

    try:
        return gguf.GGUFReader(str(path))
    except Exception as e:  # a truncated or corrupt download: gguf raises assorted errors
        raise ModelError(f"{path}: cannot read {what} ({type(e).__name__}: {e}); is the file complete?") from None


def field(reader, key: str, default=None):
    """A metadata field's value: a string, a number, or a list of numbers; `default` when absent."""
    import gguf

    f = reader.fields.get(key)
    if f is None or not f.data:
        return default
    part = f.parts[f.data[0]]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(part).decode("utf-8", "replace")
    return part.tolist()[0] if len(f.data) == 1 else [f.parts[i].tolist()[0] for i in f.data]


def check_adapter_file(lora: Path, model: Path) -> None:
    """A clear error before llama.cpp's: the file must be a LoRA adapter GGUF for this model's architecture."""
    lora, model = Path(lora), Path(model)
    if not lora.is_file():
        raise ModelError(f"{lora}: no such adapter file (expected a LoRA adapter .gguf, as `grm export` writes)")
    try:
        a, m = open_reader(lora, "the adapter's header"), open_reader(model)
    except ModelError as e:
        raise ModelError(f"{lora}: not a readable GGUF file ({e})") from None
    kind, adapter = field(a, "general.type"), field(a, "adapter.type")
    if kind != "adapter" or adapter != "lora":
        raise ModelError(f"{lora}: not a LoRA adapter GGUF (general.type={kind!r}); make one with `grm export ADAPTER_DIR --to adapter.gguf`")
    arch_a, arch_m = field(a, "general.architecture"), field(m, "general.architecture")
    if arch_a != arch_m:
        raise ModelError(f"{lora}: an adapter for architecture {arch_a!r}, but {model.name} is {arch_m!r}")
