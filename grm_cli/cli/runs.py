"""What `grm score`, `eval` and `serve` share around a scoring job: the meta RM opened before the model loads,
the engine's helpers after, and the closing lines about given principles and adaptive voting."""

from __future__ import annotations

from dataclasses import replace

from grm_cli.cli.console import say
from grm_cli.engine.factory import EngineOptions
from grm_cli.scoring.options import ScoreOptions


def report_principles(results) -> None:
    """Say when given principles fell back to the model's own, and when the setting is an oracle."""
    fallback = sum(1 for r in results if r.settings.principles == "self" and r.given_principles is None)
    oracle = sum(1 for r in results if r.oracle)
    if fallback and any(r.given_principles is not None for r in results):
        say(f"{fallback} record{'s' if fallback != 1 else ''} had no filtered principles (no run agreed with the label): scored with the model's own", "yellow")
    if oracle:
        say(f"oracle setting: {oracle} record{'s' if oracle != 1 else ''} scored with principles filtered on their own labels (paper §2.2); this is not a held-out result (see grm eval --filter-split)", "yellow")


def report_adaptive(results, k: int) -> None:
    """How much adaptive voting saved, and why records stopped."""
    adaptive = [r for r in results if r.settings.adaptive]
    if not adaptive:
        return
    used = sum(len(r.samples) for r in adaptive)
    full = k * len(adaptive)
    why: dict = {}
    for r in adaptive:
        if r.stopped_by:
            why[r.stopped_by] = why.get(r.stopped_by, 0) + 1
    stops = ", ".join(f"{n} by {rule}" for rule, n in sorted(why.items())) or "none early"
    say(f"adaptive voting: {used} of {full} samples ({1 - used / full:.0%} saved); records stopped: {stops}", "dim")


def engine_for(eng: EngineOptions, layout) -> EngineOptions:
    """The engine options for a judge: a protocol's own chat layout for a GGUF that carries none."""
    template = getattr(layout, "chat_template", None)
    return replace(eng, chat_template=template) if template and eng.chat_template is None else eng


def open_meta(opts: ScoreOptions, layout, backend: str):
    """--meta-rm opened and checked before any model loads -> (source or None, its identity for the signature)."""
    if opts.meta_rm is None:
        return None, None
    from grm_cli.metarm.open import identity, open_meta_rm

    saved = open_meta_rm(opts.meta_rm, layout, backend)
    return saved, identity(saved, opts.meta_rm)


def engine_parts(settings, engine, layout, saved_meta, eng: EngineOptions):
    """The loaded engine's helpers a run may need: the meta RM's rater and the expected-score probe."""
    from grm_cli.metarm.open import meta_rater
    from grm_cli.scoring.job import make_probe

    rater = meta_rater(saved_meta, engine, layout, n_ctx=eng.ctx + 512, n_threads=eng.threads, verbose=eng.verbose, notify=say) if saved_meta else None
    probe = make_probe(settings, engine, layout, n_ctx=eng.ctx + 64, n_threads=eng.threads, verbose=eng.verbose)
    return rater, probe
