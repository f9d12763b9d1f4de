"""The `grm` app and its entry point: user errors become one line and an exit code, never a traceback.

The commands live in the modules beside this one and register themselves on `app`; `cli/__init__.py`
imports them all. Nothing imports this package from below."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer
from rich.text import Text

from grm_cli import __version__
from grm_cli.cli.console import OutputClosed, err, say
from grm_cli.errors import ExitCode, GrmError

app = typer.Typer(
    name="grm",
    help=(
        "Generative reward modeling (DeepSeek SPCT / DeepSeek-GRM) on llama.cpp: the model writes principles, "
        "a critique and a score 1..10 for every response; k samples are voted.\n\n"
        "Examples:\n\n"
        "  grm score examples/llmbar.jsonl\n\n"
        "  grm score data.jsonl -k 8 --model DeepSeek-GRM-16B.Q4_K_M.gguf --output results.jsonl\n\n"
        "  grm principles prompt.txt"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"grm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context, version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Generative reward modeling on llama.cpp."""
    from grm_cli.cli.config import default_map

    rest = (ctx.obj or {}).get("argv", sys.argv[1:])  # main(argv) passes its own arguments: sys.argv may be another program's
    if ctx.invoked_subcommand and not any(a in ("--help", "-h") for a in rest):
        ctx.default_map = default_map(ctx.command, ctx)






class _GuardedStdout:
    """stdout whose closed pipe surfaces as OutputClosed, not as an OSError that click turns into exit 1."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise OutputClosed from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise OutputClosed from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: user errors become one line and an exit code, never a traceback.

    click's standalone mode is off so that grm decides the exit codes: it would turn a closed pipe into
    exit 1 (which docs/reference.md reserves for bugs) and Ctrl-C into a bare "Aborted!".
    """
    import os

    sys.stdout = _GuardedStdout(sys.stdout)
    try:
        code = app(args=argv, prog_name="grm", standalone_mode=False, obj={"argv": list(sys.argv[1:] if argv is None else argv)})
    except GrmError as e:
        err.print(Text.assemble(("grm: error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
        sys.exit(int(e.exit_code))
    except (KeyboardInterrupt, typer.Abort):
        say("grm: interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except (OutputClosed, BrokenPipeError):
        # The reader of the output went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(int(ExitCode.OK))
    except OSError as e:  # the environment (a full disk, a file-size limit), not the user and not a bug
        from grm_cli.errors import IOFailure

        failure = IOFailure(e)
        err.print(Text.assemble(("grm: error: ", "bold red"), str(failure)), highlight=False, soft_wrap=True)
        sys.exit(int(failure.exit_code))
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # click's usage errors: usage line + message, exit 2
            e.show()
            sys.exit(e.exit_code)
        raise
    if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
        say("grm: interrupted")
    sys.exit(code if isinstance(code, int) else 0)

