"""Training the built-in meta RM from stored runs: `grm train metarm` is a skin over `train_from_runs`.

The runs are `grm score --output` files of labelled records; each parsed sample is a trajectory whose
label is the paper's rule (`core.rules.is_correct`); its features come from `meta_features`, the same
function rating uses, so training and guided voting cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from grm_cli.core.prompt import Template
from grm_cli.engine.model import model_of
from grm_cli.errors import InputError
from grm_cli.io.jsonl import json_lines, read_text_input
from grm_cli.metarm.model import MetaRMFile, TrainReport, Trajectory, meta_features, train_head, trajectories_from_results
from grm_cli.scoring.runner import Notify, Track, no_progress, silent


def read_runs(runs: Sequence[str | Path], template: Template, notify: Notify = silent) -> tuple[list[Trajectory], list[str], set[str]]:
    """The trajectories of every run (labelled, untruncated, parsed), their file names and the models
    that generated them. A run of another template is refused: a head rates one template's trajectories."""
    items: list[Trajectory] = []
    sources: list[str] = []
    models: set[str] = set()
    for path in runs:
        name, text = read_text_input(str(path))
        found = trajectories_from_results(list(json_lines(text, name)), name)
        other = {t for t in found.templates if t and t != template.name}
        if other:
            raise InputError(f"was scored with template {sorted(other)[0]!r}; train with --template {sorted(other)[0]} (the meta RM rates trajectories of one template)", name)
        if found.unlabelled_records:
            notify(f"{name}: {found.unlabelled_records} records without a label left out", "yellow")
        if found.truncated_records:
            notify(f"{name}: {found.truncated_records} records whose responses were cut to fit the context left out (the stored input is not what the model saw)", "yellow")
        items.extend(found.items)
        sources.append(Path(name).name)
        models.update(m for m in found.models if m)
    if not items:
        raise InputError("no parsed samples of labelled records in the runs given: nothing to train on")
    return items, sources, models


def train_from_runs(
    items: Sequence[Trajectory],
    sources: Sequence[str],
    engine,
    hidden,
    template: Template,
    *,
    holdout: float = 0.2,
    seed: int = 0,
    l2: float | None = None,
    track: Track = no_progress,
) -> tuple[MetaRMFile, TrainReport]:
    """Fit the logistic head on the trajectories' hidden states (`hidden`: an engine.hidden.HiddenStates
    over `engine`, the GRM that will use the head); the returned file names that model."""
    ids = [t.record.id for t in items]
    labels = np.array([int(t.right) for t in items])
    if labels.min() == labels.max():
        train_head(np.zeros((len(labels), 1)), labels, ids)  # raises the one clear message
    feats = np.zeros((len(items), hidden.n_embd), dtype=np.float32)
    order = sorted(range(len(items)), key=lambda i: (items[i].record.id, items[i].order))  # shared prompts back to back
    with track(len(items)) as advance:
        for i in order:
            t = items[i]
            feats[i] = meta_features(hidden, template, t.record, t.order, t.text)
            advance()
    head, report = train_head(feats, labels, ids, holdout=holdout, seed=seed, l2=l2)
    base = model_of(engine)
    return MetaRMFile(head, base.name, base.fingerprint, template.name, hidden.n_embd, report.to_json(), list(sources)), report
