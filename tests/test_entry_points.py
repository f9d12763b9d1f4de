"""The module entry points, as real processes (that is the point): `python -m grm_cli` and `python -m
grm_cli.cli` run the one app with every command; the train group and export live on it, not on a second
copy of the app made by a circular import (review §1.4: `python -m grm_cli.cli export` once answered
"No such command")."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


def commands(help_text: str) -> list[str]:
    """The names listed under click's "Commands:" heading."""
    block = help_text.split("\nCommands:\n", 1)[1]
    return re.findall(r"^  (\S+)", block, re.M)


def test_python_m_grm_cli_help():
    p = run("grm_cli", "--help")
    assert p.returncode == 0, p.stderr
    assert {"score", "eval", "principles", "serve", "train", "export", "doctor"} <= set(commands(p.stdout))


@pytest.mark.parametrize("module", ["grm_cli", "grm_cli.cli"])
def test_train_group_lists_every_stage(module):
    p = run(module, "train", "--help")
    assert p.returncode == 0, p.stderr
    assert commands(p.stdout) == ["rft-data", "metarm", "rft", "rl"]


def test_python_m_grm_cli_cli_runs_export_and_the_same_app():
    p = run("grm_cli.cli", "export", "--help")
    assert p.returncode == 0 and "No such command" not in p.stderr, p.stderr
    assert p.stdout.startswith("Usage: grm export") and "--merge" in p.stdout
    assert run("grm_cli.cli", "--help").stdout == run("grm_cli", "--help").stdout
