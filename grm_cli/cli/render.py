"""Terminal output: rich tables of scores and principles. Everything here is presentation only."""

from __future__ import annotations

from typing import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grm_cli.scoring.principles import PrinciplesResult
from grm_cli.scoring.results import ScoreResult


def _short(text: str, width: int = 70) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _title(record_id: str, query: str) -> Text:
    """A panel title from user text, shown literally (never read as rich markup)."""
    return Text.assemble((record_id, "bold"), "  ", (_short(query, 60), "dim"))


def score_table(r: ScoreResult) -> Panel:
    """Responses × samples with voted totals; the best row marked, a tie said out loud."""
    v = r.verdict
    t = Table(show_edge=False, expand=False)
    t.add_column("#", justify="right")
    t.add_column("response")
    for s in r.samples:
        mark = "*" if s.forced_tail else ""
        dropped = s.meta_kept is False
        t.add_column(f"s{s.index + 1}{mark}" + (" (out)" if dropped else ""), justify="right", style="dim" if dropped else None)
    t.add_column("total", justify="right", style="bold")
    for i, resp in enumerate(r.record.responses):
        cells = [str(s.scores[i]) if s.scores is not None else "-" for s in r.samples]
        total = ("-" if v.totals is None else f"{v.totals[i]:.2f}" if isinstance(v.totals[i], float) else str(v.totals[i]))
        label = str(i)
        if r.record.preferred == i:
            label += " (label)"
        style = "green" if v.best == i else ("yellow" if v.is_tie and i in v.tied else None)
        t.add_row(label, Text(_short(resp)), *cells, total, style=style)
    if v.totals is None:
        status = Text("no sample could be parsed", style="bold red")
    elif v.is_tie:
        status = Text(f"tie between responses {', '.join(map(str, v.tied))}", style="bold yellow")
    else:
        status = Text(f"best: response {v.best}", style="bold green")
        if v.margin is not None:
            status.append(f"  margin {v.margin:.2f}" if isinstance(v.margin, float) else f"  margin {v.margin}")
    if r.correct is not None:
        status.append("  ✓ matches label" if r.correct else "  ✗ label disagrees", style="green" if r.correct else "red")
    notes = []
    if v.unparsed:
        notes.append(f"{v.unparsed} of {len(r.samples)} samples unparsed (left out of the vote)")
    if any(s.forced_tail for s in r.samples):
        notes.append("* score line forced by grammar")
    if r.settings.score_mode == "expected":
        notes.append("totals sum expected scores (the model's probabilities at each score), not the integers shown")
    if any(s.meta_kept is not None for s in r.samples):
        kept = sum(1 for s in r.samples if s.meta_kept)
        notes.append(f"meta RM kept {kept} of {len(r.samples)} samples; the total sums only those ((out): rated lower, not summed)")
    if r.given_principles is not None:
        src = r.given_principles.source
        notes.append(f"given principles ({src.get('file') or src.get('from', 'given')}{', by ' + src['model'] if src.get('model') else ''})")
    elif r.settings.principles == "none":
        notes.append("principles mode none (analysis and scores only)")
    if r.oracle:
        notes.append("ORACLE: principles filtered on this record's own label")
    body: list = [t, status]
    if notes:
        body.append(Text("; ".join(notes), style="dim"))
    return Panel(Group(*body), title=_title(r.record.id, r.record.query), title_align="left")


def principles_panel(r: PrinciplesResult) -> Panel:
    j = r.judgment
    if j.criteria:
        t = Table(show_edge=False)
        t.add_column("criterion")
        t.add_column("weight", justify="right")
        for c in j.criteria:
            t.add_row(Text(c.text), f"{c.weight:g}%" if c.weight is not None else "-")
        body = t
    else:
        body = Text(j.principles or "(the model wrote no principles)", style=None if j.principles else "red")
    return Panel(body, title=_title(r.record.id, r.record.query), title_align="left")


def filtered_panel(f) -> Panel:
    """One record of `grm principles --filter`: the kept principles and how many runs agreed."""
    title = _title(f.record.id, f.record.query)
    head = Text(f"{f.agreed} of {f.runs} runs singled out the labelled best", style="green" if f.agreed else "red")
    if f.principles is None:
        return Panel(Group(head, Text("no principles kept: the record will be scored with the model's own", style="dim")), title=title, title_align="left")
    return Panel(Group(head, Text(f.principles)), title=title, title_align="left")


def summary_line(results: Sequence[ScoreResult]) -> str:
    n = len(results)
    ties = sum(r.verdict.is_tie for r in results)
    unparsed = sum(r.verdict.totals is None for r in results)
    labelled = [r for r in results if r.correct is not None]
    def count(k: int, word: str) -> str:
        return f"{k} {word}" if k == 1 else f"{k} {word}s"

    parts = [count(n, "record"), count(ties, "tie"), f"{unparsed} unparsed"]
    if labelled:
        right = sum(bool(r.correct) for r in labelled)
        parts.append(f"{right}/{len(labelled)} match the label (ties count as wrong)")
    return ", ".join(parts)


def _principles_cell(diag: dict) -> Text:
    """The principles mode of a run; an oracle run (filtered on its own labels) is marked loudly."""
    mode = str(diag.get("principles_mode", "self"))
    oracle = diag.get("oracle_rate") or 0.0
    if oracle:
        return Text(f"{mode} ORACLE ({oracle:.0%})", style="bold yellow")
    return Text(mode)


def eval_tables(summaries: Sequence) -> list:
    """One column per run: accuracy, subsets, sections, diagnostics, and the voting@k curve."""
    from grm_cli.evaluation.metrics import fmt

    def table(title: str) -> Table:
        t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, min_width=min(100, 44 + 24 * len(summaries)))
        t.add_column("")
        for s in summaries:
            t.add_column(Text(_short(s.name or s.model, 28)), justify="right")
        return t

    main = table("Accuracy (%; ties broken by a seeded random pick, paper §5.1; plain voting over all samples)")
    main.add_row("records", *[str(s.records) for s in summaries])
    main.add_row("k", *[str(s.k) for s in summaries])
    if any(s.diagnostics.get("principles_mode", "self") != "self" for s in summaries):
        main.add_row("principles", *[_principles_cell(s.diagnostics) for s in summaries])
    main.add_row("accuracy", *[fmt(s.overall.accuracy) for s in summaries], style="bold")
    if any(s.meta_curve for s in summaries):
        main.add_row("meta-RM-guided accuracy (k/2 best-rated vote)", *[fmt(s.meta_curve[-1].accuracy) if s.meta_curve else "-" for s in summaries], style="bold")
    main.add_row("strict (tie = wrong)", *[fmt(s.overall.strict) for s in summaries])
    main.add_row("tie rate", *[fmt(s.overall.tie_rate) for s in summaries])
    main.add_row("no verdict (all samples unparsed)", *[fmt(s.overall.no_verdict_rate) for s in summaries])
    if any(s.pairwise for s in summaries):
        main.add_row("pairwise", *[fmt(s.pairwise.accuracy) if s.pairwise else "-" for s in summaries])
    if any(s.best_of_n for s in summaries):
        main.add_row("best-of-n (n > 2)", *[fmt(s.best_of_n.accuracy) if s.best_of_n else "-" for s in summaries])
    if any(getattr(s, "single", None) for s in summaries):
        main.add_row("single response, 0/1 label (count)", *[f"{fmt(s.single.accuracy)} ({s.single.count})" if s.single else "-" for s in summaries])
    out: list = [main]

    names = sorted({k for s in summaries for k in s.subsets})
    if len(names) > 1:
        sub = table("Per subset (accuracy %, count)")
        for name in names:
            sub.add_row(Text(name), *[f"{fmt(s.subsets[name].accuracy)} ({s.subsets[name].count})" if name in s.subsets else "-" for s in summaries])
        out.append(sub)
    sections = [k for k in ("Chat", "Chat Hard", "Safety", "Reasoning", "Score") if any(k in s.sections for s in summaries)]
    if sections:
        sec = table("RewardBench sections (weighted by RewardBench's example counts)")
        for name in sections:
            sec.add_row(name, *[fmt(s.sections.get(name)) for s in summaries])
        out.append(sec)

    diag = table("Diagnostics")
    rows = [
        ("parse failures (% of samples)", "parse_failure_rate", True),
        ("forced score line (% of samples)", "forced_tail_rate", True),
        ("position consistency (%)", "position_consistency", True),
        ("first shown wins (% of parsed samples)", "first_shown_wins_rate", True),
        ("  unbiased judge: mean of 1/n (%)", "first_shown_chance", True),
        ("mean winning margin per sample", "mean_margin_per_sample", False),
        ("prompt tokens / record", "prompt_tokens_per_record", False),
        ("generated tokens / record", "completion_tokens_per_record", False),
        ("sample seconds / record (overlapping when batched)", "seconds_per_record", False),
    ]
    if any(s.diagnostics.get("stopped_early_rate") for s in summaries):
        rows += [("samples / record (adaptive voting)", "samples_per_record", False), ("stopped early (% of records)", "stopped_early_rate", True)]
    for label, key, pct in rows:
        diag.add_row(label, *[fmt(s.diagnostics.get(key), pct) for s in summaries])
    out.append(diag)

    ks = sorted({p.k for s in summaries for p in s.curve})
    if len(ks) > 1:
        cur = table("Scaling: voting@k accuracy % [95% band over random k-subsets of the samples]")
        for k in ks:
            cells = []
            for s in summaries:
                p = next((p for p in s.curve if p.k == k), None)
                cells.append(f"{fmt(p.accuracy)} [{fmt(p.low)}, {fmt(p.high)}]" if p else "-")
            cur.add_row(f"k = {k}", *cells)
        out.append(cur)
    if any(s.meta_curve for s in summaries):
        meta = table("Meta-RM-guided voting: accuracy % (plain voting | guided, k_meta = k/2) [95% band of guided]")
        for k in sorted({p.k for s in summaries for p in s.meta_curve}):
            cells = []
            for s in summaries:
                plain = next((p for p in s.curve if p.k == k), None)
                guided = next((p for p in s.meta_curve if p.k == k), None)
                cells.append(f"{fmt(plain.accuracy) if plain else '-'} | {fmt(guided.accuracy)} [{fmt(guided.low)}, {fmt(guided.high)}]" if guided else "-")
            meta.add_row(f"k = {k}", *cells)
        out.append(meta)
        sweep = table("k_meta sweep at the full k (paper Table 7; k_meta = k is plain voting)")
        for m in sorted({m for s in summaries for m, _ in s.meta_sweep}):
            sweep.add_row(f"k_meta = {m}", *[fmt(dict(s.meta_sweep).get(m)) for s in summaries])
        out.append(sweep)
    if any(s.adaptive for s in summaries):
        out.append(_adaptive_table(summaries, table))
    return out


def _adaptive_table(summaries: Sequence, table) -> Table:
    """Adaptive voting replayed on the stored samples: accuracy against the samples spent."""
    from grm_cli.evaluation.metrics import fmt

    rules = sorted({f"{s.adaptive['rule']}" + (f" (risk {s.adaptive['risk']})" if s.adaptive["rule"] == "stat" else "") for s in summaries if s.adaptive})
    t = table(f"Adaptive voting ({', '.join(rules)}), replayed on the stored samples: accuracy % (full vote) | agreement with the full vote | samples used | saved")
    for k in sorted({p["k"] for s in summaries if s.adaptive for p in s.adaptive["curve"]}):
        cells = []
        for s in summaries:
            p = next((p for p in (s.adaptive or {}).get("curve", []) if p["k"] == k), None)
            if p is None:
                cells.append("-")
                continue
            acc = f"{fmt(p['accuracy'])} ({fmt(p['full_accuracy'])})" if p["accuracy"] is not None else "-"
            cells.append(f"{acc} | {fmt(p['agreement'])} | {p['samples_used']:.1f} of {k} | {fmt(p['saved'])}")
        t.add_row(f"K = {k}", *cells)
    return t


def doctor_panel(report) -> Panel:
    t = Table(show_header=False, show_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("grm", f"{report.grm_version} (Python {report.python})")
    t.add_row("llama-cpp-python", report.llama_cpp_python or "[red]not importable[/red]")
    t.add_row("GPU backends", ", ".join(report.backends) or "none (CPU only)")
    t.add_row("GPU offload", "yes" if report.gpu_offload else "no")
    t.add_row("CPU features", " ".join(report.cpu_features) or "-")
    if report.gpus:
        for g in report.gpus:
            free = f", {g.free_bytes / (1 << 30):.1f} GiB free" if g.free_bytes is not None else ""
            t.add_row("GPU", f"{g.name}: {g.total_bytes / (1 << 30):.1f} GiB{free}")
    else:
        t.add_row("GPU", "none found")
    t.add_row("default model", Text(report.default_model or report.default_model_hint or "", style=None if report.default_model else "yellow"))
    tr = report.training
    t.add_row("training extra", Text(", ".join(f"{k} {v}" for k, v in tr.items() if isinstance(v, str)) or "not installed (torch, transformers, peft, trl)"))
    m = report.model
    if m:
        t.add_row("model", Text(f"{m.name} ({m.architecture}, {m.n_layer} layers): {m.path}"))
        t.add_row("needs", f"weights {m.weights_gib:.2f} GiB + KV cache at most {m.kv_cache_gib:.2f} GiB ({m.kv_type}; {m.kv_cells:,} cells: k={m.samples} x (prompt up to --ctx {m.ctx} "
                  f"+ --max-tokens {m.max_tokens} + score line) for the records filling --parallel {m.parallel}, a record's samples sharing its prompts"
                  f"{' (adaptive: the records in flight keep their prompts between rounds)' if m.adaptive else ''}; "
                  f"a run allocates what its prompts need; trained for {m.ctx_train})")
        t.add_row("offload (auto)", m.fit or ("no GPU backend: CPU" if not report.gpu_offload else "GPU memory unknown: all layers"))
    body: list = [t]
    for p in report.problems:
        body.append(Text(f"! {p}", style="yellow"))
    return Panel(Group(*body), title="grm doctor", title_align="left")


def metarm_table(report) -> Table:
    """`grm train metarm`: how well the head tells right trajectories from wrong ones."""
    from grm_cli.evaluation.metrics import fmt

    t = Table(title=f"Meta RM: {report.trajectories} trajectories of {report.records} records, {report.right} right by the paper's rule; L2 {report.l2:g}",
              title_justify="left", title_style="bold", show_edge=False)
    t.add_column("")
    t.add_column("trajectories", justify="right")
    t.add_column("right", justify="right")
    t.add_column("AUC", justify="right")
    t.add_column("accuracy %", justify="right")
    t.add_column("balanced accuracy %", justify="right")
    for name, m in (("train", report.train), ("held out", report.heldout)):
        auc = m.get("auc")
        t.add_row(name, str(m.get("count", 0)), str(m.get("right", 0)), "-" if auc is None else f"{auc:.3f}", fmt(m.get("accuracy")), fmt(m.get("balanced_accuracy")))
    return t
