"""`grm protocols` (the judge protocols grm speaks) and `grm render` (what grm would send a judge, without
generating: the check users make before a long run)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from grm_cli.cli.app import app
from grm_cli.cli.console import print_line, say
from grm_cli.cli.options import ModelOpt, score_flags
from grm_cli.scoring.options import ScoreOptions


@app.command()
def protocols(as_json: bool = typer.Option(False, "--json", help="Print one JSON object per protocol.")) -> None:
    """List the judge protocols: each judge's own prompt and verdict format, its scale, the record fields it
    needs, and where its words come from.

    Examples:

      grm protocols

      grm protocols --json | jq -r 'select(.shape == "pairwise") | .name'
    """
    from rich.console import Console
    from rich.table import Table

    from grm_cli.core.protocols import DEFAULT_PROTOCOL, get_protocol, protocol_names

    rows = [get_protocol(name).describe() for name in protocol_names()]
    if as_json:
        for row in rows:
            print_line(row)
        return
    t = Table(show_edge=False, title="judge protocols (--protocol NAME; an alias in grm models names its own)", title_justify="left")
    for col in ("protocol", "shape", "scale", "needs", "uses", "judges"):
        t.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (" (default)" if r["name"] == DEFAULT_PROTOCOL else "")
        t.add_row(name, r["shape"], r["scale"], ", ".join(r["requires"]) or "-", ", ".join(r["uses"]) or "-", r["judges"])
    out = Console()
    out.print(t)
    out.print("\nsources (grm protocols --json has each one's licence):", style="bold")
    for r in rows:
        out.print(f"  {r['name']}: {r['source']}", highlight=False, markup=False)


@app.command()
@score_flags("judge")
def render(
    file: str = typer.Argument(..., metavar="FILE", help="JSONL records ('-' for stdin), as grm score takes them."),
    model: Optional[str] = ModelOpt,
    chat: bool = typer.Option(False, "--chat", help="Also show the exact text after the model's chat template (special tokens as text), read from --model's GGUF (its vocabulary only: nothing is generated)."),
    seed: int = typer.Option(0, "--seed", help="The run seed: the response order shown is the first sample's of a run with this seed."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Show the first sample's shuffled order (as grm score does), or the records' own order."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per record: its calls' messages (and --chat text)."),
    opts: ScoreOptions = ScoreOptions(),
) -> None:
    """Print the messages grm would send the judge for each record (the first sample: every call of it),
    without generating. A record the protocol cannot judge is a FILE:LINE error, as in grm score.

    Examples:

      grm render pairs.jsonl --protocol prometheus-relative --rubric rubric.yaml

      grm render pairs.jsonl --model prometheus-7b-v2 --chat

      grm render pairs.jsonl --protocol mt-bench-pairwise --json | jq -r '.calls[0].messages[-1].content'
    """
    from grm_cli.io.jsonl import read_records
    from grm_cli.scoring.job import ScoreJob
    from grm_cli.scoring.plan import is_protocol, sample_plan

    opts = ScoreOptions(template=opts.template, protocol=opts.protocol, rubric=opts.rubric, reference=opts.reference, seed=seed, shuffle=shuffle)
    layout = opts.judge(model)
    settings = opts.settings()
    records = ScoreJob(layout, settings).check(opts.with_inputs(read_records(file)))
    chat_layout = _chat_layout(model, getattr(layout, "chat_template", None)) if chat else None
    protocol = layout.name if is_protocol(layout) else f"deepseek-grm (template {layout.name})"
    for rec in records:
        (sample,) = sample_plan(rec, layout, settings, None)
        calls = []
        for call in sample.calls:
            entry = {"shown": list(call.prompt.order), "messages": list(call.prompt.messages), "assistant_prefix": call.prompt.assistant_prefix}
            if chat_layout is not None:
                entry["text"] = chat_layout.prompt(call.prompt.messages, call.prompt.assistant_prefix)
            calls.append(entry)
        if as_json:
            print_line({"id": rec.id, "source": rec.where, "protocol": protocol, "order": list(sample.order), "calls": calls})
            continue
        typer.echo(f"=== {rec.id} ({rec.where}) · protocol {protocol} · {len(calls)} call{'s' if len(calls) != 1 else ''}")
        for i, c in enumerate(calls, start=1):
            shown = ", ".join(f"response {x + 1}" for x in c["shown"])
            typer.echo(f"--- call {i}: shows {shown}")
            if "text" in c:
                typer.echo(c["text"])
                continue
            for m in c["messages"]:
                typer.echo(f"[{m['role']}]\n{m['content']}")
            if c["assistant_prefix"]:
                typer.echo(f"[assistant, pre-filled]\n{c['assistant_prefix']}")
    if not as_json:
        say(f"{len(records)} record{'s' if len(records) != 1 else ''} rendered; nothing was generated", "dim")


def _chat_layout(model: Optional[str], fallback: Optional[str] = None):
    """The model's chat layout from its GGUF, loading the vocabulary only (seconds, even for a 27B file)."""
    from grm_cli.engine.chat import ChatLayout
    from grm_cli.errors import ModelError
    from grm_cli.models.registry import resolve_model
    from grm_cli.native import captured_stderr

    path = Path(resolve_model(model))
    from llama_cpp import Llama

    with captured_stderr():
        try:
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        except Exception as e:  # llama.cpp raises a bare ValueError
            raise ModelError(f"{path}: llama.cpp could not read this model's vocabulary ({e})") from None

    def text(tok: int) -> str:
        return llm.detokenize([tok], special=True).decode("utf-8", "replace") if tok >= 0 else ""

    return ChatLayout(llm.metadata.get("tokenizer.chat_template") or fallback, bos=text(llm.token_bos()), eos=text(llm.token_eos()))

