"""The one reader of GGUF headers: the metadata and the tensor infos, memory-mapped, no weights read and the
vocabulary's strings skipped. The fingerprint, the GPU fit (`grm doctor`, --n-gpu-layers auto), the adapter
check and the registry's file check all read headers here. (PyPI's `gguf` reader builds an object for every
element of every array: 4 s for SmolLM2's 49,152-token vocabulary, where this walk takes milliseconds.)
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from grm_cli.errors import ModelError

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}  # GGUF value type -> struct
_STRING, _ARRAY = 8, 9


class StringArray:
    """A string array's place in the header (the vocabulary: tens of thousands of strings), not its strings."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # absolute file offset of its data

    @property
    def n_bytes(self) -> int:
        import gguf

        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(self.ggml_type)]
        return math.prod(self.shape) // block * size


@dataclass(frozen=True)
class GGUFHeader:
    """Metadata (numbers, strings, lists of numbers; string arrays as `StringArray`) and tensor infos."""

    fields: dict
    tensors: list[TensorInfo]

    def get(self, key: str, default=None):
        return self.fields.get(key, default)


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError("truncated GGUF header")
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def string(self) -> str:
        (n,) = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("truncated GGUF header")
        raw = bytes(self.buf[self.pos: self.pos + n])
        self.pos += n
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype == _STRING:
            return self.string()
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])[0]
        if vtype == _ARRAY:
            etype, count = self.unpack("<IQ")
            if etype in _SCALAR:
                fmt = _SCALAR[etype]
                return list(self.unpack(f"<{count}{fmt[1]}")) if count else []
            if etype == _STRING:
                for _ in range(count):  # skip: lengths only
                    (n,) = self.unpack("<Q")
                    self.pos += n
                if self.pos > len(self.buf):
                    raise ValueError("truncated GGUF header")
                return StringArray(count)
            return [self.value(etype) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {vtype}")


def _parse(buf) -> GGUFHeader:
    c = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    c.pos = 4
    (version,) = c.unpack("<I")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    n_tensors, n_kv = c.unpack("<QQ")
    fields = {}
    for _ in range(n_kv):
        key = c.string()
        (vtype,) = c.unpack("<I")
        fields[key] = c.value(vtype)
    raw = []
    for _ in range(n_tensors):
        name = c.string()
        (n_dims,) = c.unpack("<I")
        dims = c.unpack(f"<{n_dims}Q")
        ggml_type, offset = c.unpack("<IQ")
        raw.append((name, tuple(dims), ggml_type, offset))
    alignment = fields.get("general.alignment", 32)
    data_start = c.pos + (-c.pos % alignment)
    return GGUFHeader(fields, [TensorInfo(n, d, t, data_start + o) for n, d, t, o in raw])


def read_header(path: str | Path, what: str = "the GGUF header") -> GGUFHeader:
    """The header of a GGUF (v2/v3), memory-mapped: no weights read, the vocabulary's strings skipped. A
    truncated or corrupt file is a ModelError that says so."""
    path = Path(path)
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            header = _parse(buf)
            end = max((t.offset + t.n_bytes for t in header.tensors), default=0)
            if end > len(buf):
                raise ValueError(f"the file has {len(buf):,} bytes, its tensors end at byte {end:,}: truncated")
            return header
    except (OSError, ValueError, struct.error, KeyError) as e:
        raise ModelError(f"{path}: cannot read {what} ({e}); is the file complete?") from None


def tensor_offsets(path: str | Path) -> list[int]:
    """Absolute file offsets of every tensor's data in a GGUF (v2/v3), from the header alone; ValueError
    (or OSError) for a file that is not one, which the fingerprint then samples evenly."""
    with Path(path).open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return [t.offset for t in _parse(buf).tensors]
        except struct.error as e:
            raise ValueError(str(e)) from None


def check_gguf(path: Path) -> Path:
    """`path` if it starts with GGUF's magic, else a clear error (a download that is not a model)."""
    with Path(path).open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file (llama.cpp models start with the bytes 'GGUF')")
    return Path(path)


def check_adapter_file(lora: Path, model: Path) -> None:
    """A clear error before llama.cpp's: the file must be a LoRA adapter GGUF for this model's architecture."""
    lora, model = Path(lora), Path(model)
    if not lora.is_file():
        raise ModelError(f"{lora}: no such adapter file (expected a LoRA adapter .gguf, as `grm export` writes)")
    try:
        a, m = read_header(lora, "the adapter's header"), read_header(model)
    except ModelError as e:
        raise ModelError(f"{lora}: not a readable GGUF file ({e})") from None
    kind, adapter = a.get("general.type"), a.get("adapter.type")
    if kind != "adapter" or adapter != "lora":
        raise ModelError(f"{lora}: not a LoRA adapter GGUF (general.type={kind!r}); make one with `grm export ADAPTER_DIR --to adapter.gguf`")
    arch_a, arch_m = a.get("general.architecture"), m.get("general.architecture")
    if arch_a != arch_m:
        raise ModelError(f"{lora}: an adapter for architecture {arch_a!r}, but {model.name} is {arch_m!r}")
