"""The grm command line: a thin skin over the library. Nothing in the package imports it.

Each command module registers its commands on `app` when imported; the order here is `grm --help`'s.
"""

from grm_cli.cli import score, eval, admin, serve, train  # noqa: F401  (registers the commands)
from grm_cli.cli.app import app, main

__all__ = ["app", "main"]
from grm_cli.cli import convert as _convert; _convert.register(app)  # grm convert
