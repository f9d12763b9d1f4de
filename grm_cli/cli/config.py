"""Settings files: defaults < user file (~/.config/grm/config.yaml or $GRM_CONFIG) < ./grm.yaml < flags.

A file holds flag names as keys (`samples: 8`, `max-tokens: 256`, `model: ~/models/grm.gguf`), at the top
level for every command that has that flag, or under a command's name for that command only:

    model: ~/models/DeepSeek-GRM-16B.Q4_K_M.gguf
    ctx: 8192
    eval:
      samples: 8

Values become click's `default_map`, so a flag on the command line always wins; each value is checked
with the flag's own type when the file is read, and a bad one names the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grm_cli.errors import InputError, read_yaml_mapping


def user_config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "grm"


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


def read_settings(group, ctx) -> list[Setting]:
    """Every setting the config files give, checked against the commands' flags, in precedence order."""
    settings: list[Setting] = []
    for label, path in config_files():
        data = read_yaml_mapping(path, "settings")
        origin = f"{label} {path}"
        for key, value in data.items():
            key = str(key)
            if key in group.commands and isinstance(value, dict):
                targets = [(key, value)]
            else:
                targets = [(name, {key: value}) for name in group.commands]
            matched = False
            for cmd_name, items in targets:
                command = group.commands[cmd_name]
                for k, v in items.items():
                    param = _param_for(command, str(k))
                    if param is None:
                        if key in group.commands:  # a command's own section: every key must be its flag
                            raise InputError(f'"{cmd_name}.{k}": `grm {cmd_name}` has no flag --{str(k).replace("_", "-")}', str(path))
                        continue
                    matched = True
                    if v is not None:
                        try:
                            v = param.process_value(ctx, v)
                        except Exception as e:  # click's BadParameter, from typer's vendored click
                            raise InputError(f'"{k}": {getattr(e, "message", e)}', str(path)) from None
                    settings.append(Setting(cmd_name, param.name, param.opts[0], v, origin))
            if not matched:
                raise InputError(f'unknown setting "{key}": expected a flag name of a grm command (e.g. samples, model, ctx, max-tokens) or a command section', str(path))
    return settings


def default_map(group, ctx) -> dict:
    """click's default_map for the group: {command: {param: value}}, later files overriding earlier."""
    out: dict[str, dict] = {}
    for s in read_settings(group, ctx):
        out.setdefault(s.command, {})[s.name] = s.value
    return out
