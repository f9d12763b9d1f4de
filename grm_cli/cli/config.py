"""Settings files: defaults < user file (~/.config/grm/config.yaml or $GRM_CONFIG) < ./grm.yaml < flags.

A file holds flag names as keys (`samples: 8`, `max-tokens: 256`, `model: ~/models/grm.gguf`), at the top
level for every command that has that flag, or under a command's name for that command only (a group's
name narrows to its commands, and may hold their sections):

    model: ~/models/DeepSeek-GRM-16B.Q4_K_M.gguf
    ctx: 8192
    eval:
      samples: 8
    train:
      rft:
        lora-rank: 32

Values become click's `default_map`, so a flag on the command line always wins; each value is checked
with the flag's own type when the file is read, and a bad one names the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grm_cli.errors import InputError
from grm_cli.models.registry import user_config_dir
from grm_cli.yaml_file import read_yaml_mapping


def user_config_path() -> Path:
    env = os.environ.get("GRM_CONFIG")
    return Path(env).expanduser() if env else user_config_dir() / "config.yaml"


def project_config_path() -> Path:
    return Path.cwd() / "grm.yaml"


def config_files() -> list[tuple[str, Path]]:
    """(origin label, path) of the files that exist, lowest precedence first."""
    files = [("user file", user_config_path()), ("project file", project_config_path())]
    return [(label, p) for label, p in files if p.is_file()]


def is_option(param) -> bool:
    # typer vendors its own click: recognise options by shape, not by class
    return bool(param.opts) and param.opts[0].startswith("-")


def _param_for(command, key: str):
    flag = "--" + key.replace("_", "-")
    for p in command.params:
        if is_option(p) and (flag in p.opts or p.name == key.replace("-", "_")):
            return p
    return None


@dataclass(frozen=True)
class Setting:
    command: str
    name: str  # the parameter's name in the command
    flag: str
    value: object
    origin: str  # "user file /path" | "project file /path"


def is_group(command) -> bool:
    return hasattr(command, "commands")


def leaf_commands(command, path: tuple[str, ...] = ()):
    """(path, command) of every command under `command`: ("score",), ("train", "rft"), ..."""
    if not is_group(command):
        yield path, command
        return
    for name, sub in command.commands.items():
        yield from leaf_commands(sub, path + (name,))


def _collect(command, path: tuple[str, ...], items: dict, origin: str, file: Path, ctx, out: list) -> None:
    """Settings of one level of a file: flags for every command below `command`, or sections for its
    subcommands (a group such as `train` may hold both)."""
    for key, value in items.items():
        key = str(key)
        if is_group(command) and key in command.commands and isinstance(value, dict):
            _collect(command.commands[key], path + (key,), value, origin, file, ctx, out)
            continue
        matched = False
        for leaf_path, leaf in leaf_commands(command, path):
            param = _param_for(leaf, key)
            if param is None:
                continue
            matched = True
            v = value
            if isinstance(v, bool) and _numeric(param):
                raise InputError(f'"{key}": expected a number, got {str(v).lower()} (a YAML boolean)', str(file))
            if v is not None:
                try:
                    v = param.process_value(ctx, v)
                except Exception as e:  # click's BadParameter, from typer's vendored click
                    raise InputError(f'"{key}": {getattr(e, "message", e)}', str(file)) from None
            out.append(Setting(" ".join(leaf_path), param.name, param.opts[0], v, origin))
        if not matched:
            if path:  # a command's own section: every key must be one of its flags
                raise InputError(f'"{".".join(path + (key,))}": `grm {" ".join(path)}` has no flag --{key.replace("_", "-")}', str(file))
            raise InputError(f'unknown setting "{key}": expected a flag name of a grm command (e.g. samples, model, ctx, max-tokens) or a command section', str(file))


def _numeric(param) -> bool:
    """Whether a flag takes a number (YAML's true/false would pass as 1/0 there: a bool is not an int)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        annotation = {"integer": int, "float": float}.get(getattr(getattr(param, "type", None), "name", ""))
    return annotation in (int, float)


def read_settings(group, ctx) -> list[Setting]:
    """Every setting the config files give, checked against the commands' flags, in precedence order.
    Top-level keys reach every command that has the flag, `train rft` included; sections narrow them."""
    settings: list[Setting] = []
    for label, path in config_files():
        _collect(group, (), read_yaml_mapping(path, "settings"), f"{label} {path}", path, ctx, settings)
    return settings


def default_map(group, ctx) -> dict:
    """click's default_map for the group, nested as the commands are ({"train": {"rft": {...}}}), later
    files overriding earlier."""
    out: dict = {}
    for s in read_settings(group, ctx):
        node = out
        for part in s.command.split(" "):
            node = node.setdefault(part, {})
        node[s.name] = s.value
    return out
