"""The grm command line: a thin skin over the library. Nothing in the package imports it."""

from grm_cli.cli import train as _train  # noqa: F401  registers train rft, train rl and export
from grm_cli.cli.app import app, main

__all__ = ["app", "main"]
