"""Terminal output: rich tables of scores and principles. Everything here is presentation only."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .pipeline import PrinciplesResult, ScoreResult


def _short(text: str, width: int = 70) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def score_table(r: ScoreResult) -> Panel:
    """Responses × samples with voted totals; the best row marked, a tie said out loud."""
    v = r.verdict
    t = Table(show_edge=False, expand=False)
    t.add_column("#", justify="right")
    t.add_column("response")
    for s in r.samples:
        mark = "*" if s.forced_tail else ""
        t.add_column(f"s{s.index + 1}{mark}", justify="right")
    t.add_column("total", justify="right", style="bold")
    for i, resp in enumerate(r.record.responses):
        cells = [str(s.scores[i]) if s.scores is not None else "-" for s in r.samples]
        total = str(v.totals[i]) if v.totals is not None else "-"
        label = str(i)
        if r.record.preferred == i:
            label += " (label)"
        style = "green" if v.best == i else ("yellow" if v.is_tie and i in v.tied else None)
        t.add_row(label, _short(resp), *cells, total, style=style)
    if v.totals is None:
        status = Text("no sample could be parsed", style="bold red")
    elif v.is_tie:
        status = Text(f"tie between responses {', '.join(map(str, v.tied))}", style="bold yellow")
    else:
        status = Text(f"best: response {v.best}", style="bold green")
        if v.margin is not None:
            status.append(f"  margin {v.margin}")
    if r.correct is not None:
        status.append("  ✓ matches label" if r.correct else "  ✗ label disagrees", style="green" if r.correct else "red")
    notes = []
    if v.unparsed:
        notes.append(f"{v.unparsed} of {len(r.samples)} samples unparsed (left out of the vote)")
    if any(s.forced_tail for s in r.samples):
        notes.append("* score line forced by grammar")
    body: list = [t, status]
    if notes:
        body.append(Text("; ".join(notes), style="dim"))
    title = f"{r.record.id}  [dim]{_short(r.record.query, 60)}[/dim]"
    return Panel(Group(*body), title=title, title_align="left")


def principles_panel(r: PrinciplesResult) -> Panel:
    j = r.judgment
    if j.criteria:
        t = Table(show_edge=False)
        t.add_column("criterion")
        t.add_column("weight", justify="right")
        for c in j.criteria:
            t.add_row(c.text, f"{c.weight:g}%" if c.weight is not None else "-")
        body = t
    else:
        body = Text(j.principles or "(the model wrote no principles)", style=None if j.principles else "red")
    return Panel(body, title=f"{r.record.id}  [dim]{_short(r.record.query, 60)}[/dim]", title_align="left")


def summary_line(results: Sequence[ScoreResult]) -> str:
    n = len(results)
    ties = sum(r.verdict.is_tie for r in results)
    unparsed = sum(r.verdict.totals is None for r in results)
    labelled = [r for r in results if r.correct is not None]
    parts = [f"{n} records", f"{ties} ties", f"{unparsed} unparsed"]
    if labelled:
        right = sum(bool(r.correct) for r in labelled)
        parts.append(f"{right}/{len(labelled)} match the label (ties count as wrong)")
    return ", ".join(parts)


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr)
