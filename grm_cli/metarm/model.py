"""The built-in meta RM (paper §4, App. D.1): a value head on the GRM's own backbone that rates each sampled
trajectory for being right, so that meta-RM-guided voting sums only the k_meta best-rated samples.

Input: the last token's hidden state of the meta layout (`prompting.render_meta`: the query, the responses
in the order the sample saw them, then the sample's principles, critique and scores). Head: logistic
regression with balanced class weights and L2 (Newton steps, deterministic), on standardised features.
Label: `rules.is_correct` on the sample's own scores, the same rule as everywhere else. The head is one
small JSON file that names the GGUF (by content fingerprint) and the template it was trained for; using
it with another model is an error, because its features would mean something else.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from grm_cli.core.prompt import Template, render_meta
from grm_cli.core.records import Record
from grm_cli.errors import InputError

FORMAT = "grm-metarm/1"


# -- the head --------------------------------------------------------------------------------------
@dataclass
class LogisticHead:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(x) - self.mean) / self.scale) @ self.weights + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(trajectory is right) per row."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iters: int = 50) -> LogisticHead:
    """Balanced-class logistic regression by Newton's method: each class weighs half, so a run where most
    samples are wrong (a small model) still learns what right looks like."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    classes = set(np.unique(y).tolist())
    if classes != {0.0, 1.0}:
        raise InputError("the meta RM needs trajectories of both kinds, right and wrong, to learn from")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    pos = y.sum()
    sw = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40, 40)))
        grad = z.T @ (sw * (p - y)) + reg * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return LogisticHead(mean.astype(np.float32), scale.astype(np.float32), w[:-1].astype(np.float32), float(w[-1]))


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Probability that a random right trajectory is rated above a random wrong one (ties count half)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    equal = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * equal) / (len(pos) * len(neg)))


def split_by_group(groups: Sequence[str], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out rows by record: every sample of a record lands on the same side (no leak across samples)."""
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    n_test = max(1, round(len(names) * holdout)) if len(names) > 1 and holdout > 0 else 0
    test = set(names[:n_test])
    mask = np.array([g in test for g in groups])
    return ~mask, mask


@dataclass
class TrainReport:
    trajectories: int
    right: int
    records: int
    train: dict
    heldout: dict
    l2: float = 1.0

    def to_json(self) -> dict:
        return {"trajectories": self.trajectories, "right": self.right, "records": self.records, "l2": self.l2, "train": self.train, "heldout": self.heldout}


def _metrics(head: LogisticHead, x: np.ndarray, y: np.ndarray) -> dict:
    if not len(y):
        return {"count": 0, "auc": None, "accuracy": None, "balanced_accuracy": None}
    p = head.predict(x)
    pred = (p >= 0.5).astype(int)
    per_class = [float((pred[y == c] == c).mean()) for c in (0, 1) if (y == c).any()]
    return {
        "count": int(len(y)),
        "right": int(y.sum()),
        "auc": roc_auc(p, y),
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(np.mean(per_class)),
    }


L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)


def choose_l2(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, folds: int = 4, seed: int = 0) -> float:
    """The L2 penalty with the best mean AUC over record-grouped folds of the training rows: hidden states
    have hundreds of dimensions and a labelled run a few hundred samples, so the penalty decides whether the
    head learns or memorises."""
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    fold_of = {g: i % folds for i, g in enumerate(names)}
    f = np.array([fold_of[g] for g in groups])
    best, best_auc = L2_GRID[1], -1.0
    for l2 in L2_GRID:
        aucs = []
        for i in range(min(folds, len(names))):
            tr, te = f != i, f == i
            if len(set(y[tr].tolist())) < 2 or len(set(y[te].tolist())) < 2:
                continue
            auc = roc_auc(fit_logistic(x[tr], y[tr], l2=l2, iters=15).predict(x[te]), y[te])
            if auc is not None:
                aucs.append(auc)
        if aucs and float(np.mean(aucs)) > best_auc:
            best, best_auc = l2, float(np.mean(aucs))
    return best


def train_head(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, holdout: float = 0.2, seed: int = 0, l2: float | None = None) -> tuple[LogisticHead, TrainReport]:
    """Fit on the training records, measure on the held-out ones; the saved head is the one measured.
    l2=None chooses the penalty by cross-validation on the training records."""
    y = np.asarray(y, dtype=int)
    if len(y) == 0:
        raise InputError("no trajectories to train the meta RM on: the runs hold no parsed samples of labelled records")
    if y.min() == y.max():
        kind = "right" if y[0] == 1 else "wrong"
        raise InputError(
            f"all {len(y)} trajectories are {kind} by the paper's rule, so there is nothing to tell apart: "
            "a meta RM needs both kinds (score more labelled records, or raise -k)"
        )
    train, test = split_by_group(groups, holdout, seed)
    if len(set(y[train].tolist())) < 2:  # the split left one class: train on everything, say there is no held-out number
        train, test = np.ones(len(y), dtype=bool), np.zeros(len(y), dtype=bool)
    train_groups = [g for g, t in zip(groups, train) if t]
    chosen = l2 if l2 is not None else choose_l2(x[train], y[train], train_groups, seed=seed)
    head = fit_logistic(x[train], y[train], l2=chosen)
    report = TrainReport(len(y), int(y.sum()), len(set(groups)), _metrics(head, x[train], y[train]), _metrics(head, x[test], y[test]), chosen)
    return head, report


# -- the saved meta RM -----------------------------------------------------------------------------
@dataclass
class MetaRMFile:
    head: LogisticHead
    model: str  # the GGUF's name, for messages
    model_fingerprint: str  # the GGUF's content fingerprint (cache.model_fingerprint)
    template: str
    n_embd: int
    report: dict = field(default_factory=dict)
    trained_on: list[str] = field(default_factory=list)
    path: str = ""

    def to_json(self) -> dict:
        h = self.head
        return {
            "format": FORMAT,
            "kind": "logistic head on the GRM's last-token hidden state",
            "model": self.model,
            "model_fingerprint": self.model_fingerprint,
            "template": self.template,
            "input_layout": "prompting.render_meta",
            "n_embd": self.n_embd,
            "trained_on": self.trained_on,
            "report": self.report,
            "head": {"mean": h.mean.tolist(), "scale": h.scale.tolist(), "weights": h.weights.tolist(), "bias": h.bias},
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json()) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MetaRMFile":
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("no such meta RM file (train one with `grm train metarm`)", str(path)) from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise InputError(f"not a meta RM file of grm ({type(e).__name__})", str(path)) from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise InputError(f'not a meta RM file of grm (expected "format": "{FORMAT}")', str(path))
        try:
            h = obj["head"]
            head = LogisticHead(np.array(h["mean"], dtype=np.float32), np.array(h["scale"], dtype=np.float32), np.array(h["weights"], dtype=np.float32), float(h["bias"]))
            n = int(obj["n_embd"])
            if not (len(head.mean) == len(head.scale) == len(head.weights) == n):
                raise ValueError("head sizes differ from n_embd")
            return cls(head, str(obj["model"]), str(obj["model_fingerprint"]), str(obj["template"]), n, obj.get("report") or {}, list(obj.get("trained_on") or []), str(path))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"a damaged meta RM file ({type(e).__name__}: {e})", str(path)) from None

    def check_template(self, template: Template) -> None:
        if template.name != self.template:
            raise InputError(f'this meta RM was trained on trajectories of template "{self.template}", not "{template.name}"', self.path)

    def check(self, fingerprint: str, model_name: str, template: Template) -> None:
        """A head only means something on the backbone and template it was trained on."""
        self.check_template(template)
        if fingerprint != self.model_fingerprint:
            raise InputError(
                f'this meta RM was trained on the hidden states of "{self.model}" ({self.model_fingerprint}); '
                f'the loaded model is "{model_name}" ({fingerprint}): train one for this model with `grm train metarm`',
                self.path,
            )


def meta_features(hidden, template: Template, rec: Record, order: Sequence[int], trajectory: str) -> np.ndarray:
    """The meta RM's input, the ONE way training and rating build it: the backbone's last hidden state
    over the meta prompt (the record as shown, then the trajectory as the assistant's turn)."""
    p = render_meta(template, rec, order, trajectory)
    return hidden.last_hidden(p.messages, p.assistant_prefix)


class MetaRM:
    """Rates sampled trajectories: P(right) from the head over the backbone's hidden state."""

    def __init__(self, saved: MetaRMFile, hidden, template: Template):
        if hidden.n_embd != saved.n_embd:
            raise InputError(f"the meta RM expects {saved.n_embd} hidden features, the model gives {hidden.n_embd}", saved.path)
        self.saved = saved
        self.hidden = hidden
        self.template = template

    def features(self, rec: Record, order: Sequence[int], trajectory: str) -> np.ndarray:
        return meta_features(self.hidden, self.template, rec, order, trajectory)

    def rate(self, rec: Record, samples: Sequence[tuple[Sequence[int], str]]) -> list[float]:
        """One rating per (order, text); samples with the same order reuse the prompt's KV cache."""
        by_order = sorted(range(len(samples)), key=lambda i: tuple(samples[i][0]))
        out = [0.0] * len(samples)
        for i in by_order:
            order, text = samples[i]
            out[i] = float(self.saved.head.predict(self.features(rec, order, text))[0])
        return out


# -- training data from `grm score --output` runs --------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    record: Record
    order: tuple[int, ...]
    text: str
    right: bool  # rules.is_correct on this sample's own scores


@dataclass
class TrajectorySet:
    items: list[Trajectory]
    unlabelled_records: int = 0
    unparsed_samples: int = 0
    truncated_records: int = 0  # scored with responses cut to fit: the stored input is not what the model saw
    templates: set = field(default_factory=set)
    models: set = field(default_factory=set)


def trajectories_from_results(lines: Sequence[tuple[int, dict]], source: str) -> TrajectorySet:
    """Every parsed sample of every labelled record in result lines (read through the one results-line
    reader), labelled by the paper's rule (Eq. 10): the same `rules.is_correct` that scoring, evaluation and
    the RL reward use."""
    from grm_cli.core.records import record_from_dict
    from grm_cli.core.rules import is_correct, record_label
    from grm_cli.scoring.results import result_from_json

    out = TrajectorySet([])
    for lineno, obj in lines:
        if not isinstance(obj, dict) or "samples" not in obj or "input" not in obj:
            raise InputError('not a result line of `grm score --output` (it needs "input" and "samples")', source, lineno)
        if not isinstance(obj["samples"], list):
            raise InputError('field "samples": expected a list of samples', source, lineno)
        rec = record_from_dict(obj["input"], source, lineno)
        stored = result_from_json({"n": len(rec.responses), "id": rec.id, **obj}, source, lineno)  # a line may leave out what its input says
        out.templates.add(stored.template)
        out.models.add(stored.model)
        label = record_label(rec)
        if label is None:
            out.unlabelled_records += 1
            continue
        if stored.truncated:
            out.truncated_records += 1
            continue
        for raw, s in zip(obj["samples"], stored.samples):
            if not isinstance(raw, dict) or "text" not in raw or "order" not in raw or not (
                    s.sampled is None or all(isinstance(v, int) and not isinstance(v, bool) for v in s.sampled)):
                raise InputError('field "samples": each sample needs "order", "text" and "scores" (a list of integers, or null)', source, lineno)
            if s.sampled is None:
                out.unparsed_samples += 1
                continue
            if sorted(s.order) != list(range(len(rec.responses))) or len(s.sampled) != len(rec.responses):
                raise InputError(f'field "samples": sample {raw.get("index")} does not match the record\'s {len(rec.responses)} responses', source, lineno)
            out.items.append(Trajectory(rec, s.order, s.text, is_correct(s.sampled, label)))
    return out
