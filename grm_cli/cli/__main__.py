"""python -m grm_cli.cli: the grm command, the same app as `python -m grm_cli`."""

from grm_cli.cli import main

main()
