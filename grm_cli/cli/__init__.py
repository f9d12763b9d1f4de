"""The grm command line: a thin skin over the library. Nothing in the package imports it.

Each command module registers its commands on `app` when imported; the order here is `grm --help`'s.
"""

from grm_cli.cli import admin, eval, protocols, score, serve, train, view  # noqa: F401  (registers the commands)
from grm_cli.cli import convert as _convert  # noqa: E402  (grm convert; registers through a function)
from grm_cli.cli.app import app, main

_convert.register(app)

__all__ = ["app", "main"]
