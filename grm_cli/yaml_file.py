"""Reading YAML files users write (settings, training configs, model aliases, templates, rubrics) and the
ones grm ships (prompt texts): one reader, so every problem is an InputError naming the file and line.

It sits on the bottom floor with `errors`: the pure core reads its shipped prompt texts through it.
"""

from __future__ import annotations

from grm_cli.errors import InputError


def read_yaml(path, what: str):
    """Any YAML document (None for an empty file); problems as InputErrors naming the file (and line)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError(f"no such {what} file", str(path)) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, expected a {what} file", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the {what} file: {getattr(e, 'strerror', None) or e}", str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(e, 'problem', None) or e}", str(path), mark.line + 1 if mark else None) from None


def read_yaml_mapping(path, what: str) -> dict:
    """A YAML file that must hold a mapping (an empty file is an empty one)."""
    data = read_yaml(path, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"expected a YAML mapping in this {what} file", str(path))
    return data
