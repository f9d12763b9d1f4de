"""python -m grm_cli: the grm command (so `accelerate launch -m grm_cli train rft ...` works)."""

from grm_cli.cli import main

main()
