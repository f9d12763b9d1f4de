"""Accuracy of a judge on labelled records, its diagnostics, and the voting@k scaling curve.

Works on stored results (what `grm score --output` writes), so every number can be recomputed from
a results file without generating anything. Correctness is `rules.is_correct` (Eq. 10, a tie is wrong:
"strict"); the reported accuracy breaks ties by a seeded random pick among the tied (§5.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from grm_cli.core.rules import argmax_unique, break_tie, is_correct, single_response_correct, tie_priority
from grm_cli.core.voting import vote
from grm_cli.errors import InputError
from grm_cli.io.run_logs import is_speed_line
from grm_cli.scoring.results import StoredResult, result_from_json

# RewardBench (v1) sections: subset -> section, and the example counts it weights subsets by
# (math-prm is up-weighted to equal the six code subsets together, as RewardBench does).
REWARDBENCH_SECTIONS: dict[str, list[str]] = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst", "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond", "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}
REWARDBENCH_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28, "mt-bench-med": 40,
    "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "refusals-dangerous": 100, "refusals-offensive": 100,
    "xstest-should-refuse": 154, "xstest-should-respond": 250, "donotanswer": 136, "math-prm": 984,
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}


def _labelled(results: Iterable[StoredResult]) -> list[StoredResult]:
    return [r for r in results if r.preferred is not None and r.n >= 2]


@dataclass(frozen=True)
class Accuracy:
    count: int
    accuracy: float | None  # ties broken by a seeded random pick (§5.1)
    strict: float | None  # Eq. 10: a tie is wrong
    tie_rate: float | None
    no_verdict_rate: float | None  # records where no sample parsed (counted wrong)

    def to_json(self) -> dict:
        return {"count": self.count, "accuracy": self.accuracy, "strict_accuracy": self.strict, "tie_rate": self.tie_rate, "no_verdict_rate": self.no_verdict_rate}


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def accuracy(results: Sequence[StoredResult], seed: int = 0) -> Accuracy:
    """Accuracy of the voted totals of all samples of each labelled record."""
    right, strict, ties, none = [], [], [], []
    for r in results:
        v = vote([s.scores for s in r.samples], r.n)
        if v.totals is None:  # no sample parsed: no verdict, counted wrong (never a silent tie)
            right.append(0.0)
            strict.append(0.0)
            ties.append(0.0)
            none.append(1.0)
            continue
        right.append(float(break_tie(v.totals, seed, r.id) == r.preferred))
        strict.append(float(is_correct(v.totals, r.preferred)))
        ties.append(float(v.is_tie))
        none.append(0.0)
    return Accuracy(len(results), _mean(right), _mean(strict), _mean(ties), _mean(none))


def single_accuracy(results: Sequence[StoredResult]) -> Accuracy:
    """Single responses with a 0/1 label: right when most parsed samples give the label (rules.single_response_correct;
    an even split is wrong). No ties here: "strict" equals "accuracy"."""
    right, none = [], []
    for r in results:
        parsed = [s.scores for s in r.samples if s.scores is not None]
        none.append(float(not parsed))
        right.append(float(single_response_correct([s.scores for s in r.samples], r.label)))
    return Accuracy(len(results), _mean(right), _mean(right), 0.0 if results else None, _mean(none))


def rewardbench_sections(per_subset: dict[str, Accuracy]) -> dict[str, float]:
    """Section scores weighted by RewardBench's example counts, for the sections whose subsets are present."""
    out = {}
    for section, subsets in REWARDBENCH_SECTIONS.items():
        present = [s for s in subsets if s in per_subset and per_subset[s].accuracy is not None]
        if present:
            w = sum(REWARDBENCH_COUNTS[s] for s in present)
            out[section] = sum(per_subset[s].accuracy * REWARDBENCH_COUNTS[s] for s in present) / w
    if len(out) == len(REWARDBENCH_SECTIONS):
        out["Score"] = sum(out[s] for s in REWARDBENCH_SECTIONS) / len(REWARDBENCH_SECTIONS)
    return out


def position_consistency(results: Iterable[StoredResult]) -> float | None:
    """Of all pairs of parsed samples of one record shown in different orders, the share whose single
    samples single out the same response (a tie in either counts as a disagreement)."""
    agree = total = 0
    for r in results:
        parsed = [s for s in r.samples if s.scores is not None]
        for a, b in combinations(parsed, 2):
            if a.order == b.order:
                continue
            total += 1
            best_a = argmax_unique(a.scores)
            agree += best_a is not None and best_a == argmax_unique(b.scores)
    return agree / total if total else None


def first_shown_wins(results: Iterable[StoredResult]) -> tuple[float | None, float | None]:
    """(share, chance) over the parsed samples: how often a sample's unique top score goes to the response
    it was shown first (position bias: what rejective fine-tuning can learn from a biased sampler), and
    what an unbiased judge would give, the mean of 1/n. None when no sample was parsed."""
    wins = chance = total = 0.0
    for r in results:
        for s in r.samples:
            if s.scores is None or not s.order:
                continue
            total += 1
            wins += argmax_unique(s.scores) == s.order[0]
            chance += 1 / len(s.order)
    return (wins / total, chance / total) if total else (None, None)


@dataclass(frozen=True)
class CurvePoint:
    k: int
    accuracy: float
    low: float  # 2.5th percentile over the random subsets
    high: float  # 97.5th percentile
    draws: int

    def to_json(self) -> dict:
        return {"k": self.k, "accuracy": self.accuracy, "low": self.low, "high": self.high, "draws": self.draws}


def curve_ks(max_k: int) -> list[int]:
    ks, k = [], 1
    while k < max_k:
        ks.append(k)
        k *= 2
    return ks + [max_k]


def _prepare(results: Sequence[StoredResult], seed: int) -> list:
    prepared = []
    for r in results:
        scores = np.array([s.scores if s.scores is not None else [0] * r.n for s in r.samples], dtype=float).reshape(len(r.samples), r.n)
        parsed = np.array([s.scores is not None for s in r.samples])
        meta = np.array([s.meta_score if s.meta_score is not None else -np.inf for s in r.samples], dtype=float)
        prio = np.array(tie_priority(seed, r.id, r.n), dtype=float)
        prepared.append((scores, parsed, meta, prio, r.preferred))
    return prepared


def _guided(mask: np.ndarray, meta: np.ndarray, k_meta: int) -> np.ndarray:
    """Per draw, keep the k_meta chosen samples with the highest meta ratings (equal ratings: the earlier
    sample), as `voting.meta_keep` does."""
    keyed = np.where(mask, meta[None, :], -np.inf)
    top = np.argsort(-keyed, axis=1, kind="stable")[:, :k_meta]
    keep = np.zeros_like(mask)
    np.put_along_axis(keep, top, True, axis=1)
    return keep & mask


def _draw_accuracy(prepared: list, k: int, n_draws: int, rng, k_meta=None) -> np.ndarray:
    acc = np.zeros(n_draws)
    for scores, parsed, meta, prio, label in prepared:
        kk = len(scores)
        if k >= kk:
            mask = np.ones((n_draws, kk), dtype=bool)
        else:
            keys = rng.random((n_draws, kk))
            chosen = np.argsort(keys, axis=1)[:, :k]
            mask = np.zeros((n_draws, kk), dtype=bool)
            np.put_along_axis(mask, chosen, True, axis=1)
        mask &= parsed
        if k_meta is not None:
            mask = _guided(mask, meta, k_meta(k))
        totals = mask.astype(float) @ scores  # (draws, n)
        top = totals.max(axis=1, keepdims=True)
        if not np.array_equal(scores, np.round(scores)):
            # float (expected) scores: a sum in sample order can round two totals apart that vote()'s fsum
            # makes equal, or the reverse (3.3 + 9.9 + 2.7 != 2.7 + 9.9 + 3.3). The rows whose best totals are
            # within rounding of each other are summed again with fsum; the rest are decided by a wider gap.
            close = ((top - totals) <= 1e-9 * (mask.astype(float) @ np.abs(scores)).max(axis=1, keepdims=True)).sum(axis=1) > 1
            for d in np.flatnonzero(close):
                totals[d] = [math.fsum(scores[mask[d], i]) for i in range(scores.shape[1])]
            top = totals.max(axis=1, keepdims=True)
        tied = totals == top
        pick = np.where(tied, prio, -1.0).argmax(axis=1)
        acc += (pick == label) & mask.any(axis=1)
    return acc / len(prepared)


def scaling_curve(results: Sequence[StoredResult], seed: int = 0, draws: int = 200, *, meta: bool = False) -> list[CurvePoint]:
    """voting@k for k = 1, 2, 4, ... K from one run of K samples per record: for each draw, every record
    votes with a random k-subset of its samples; ties break by the same seeded rule as `accuracy`.
    At k = K every draw is the full vote, so the point equals `accuracy(...)`.
    meta=True: meta-RM-guided voting, each k-subset summing only its k/2 best-rated samples (paper default)."""
    if not results:
        return []
    max_k = max(len(r.samples) for r in results)
    rng = np.random.default_rng(seed)
    prepared = _prepare(results, seed)
    points = []
    for k in curve_ks(max_k):
        n_draws = 1 if k >= max_k else draws
        acc = _draw_accuracy(prepared, k, n_draws, rng, (lambda kk: max(1, kk // 2)) if meta else None)
        points.append(CurvePoint(k, float(acc.mean()), float(np.percentile(acc, 2.5)), float(np.percentile(acc, 97.5)), n_draws))
    return points


def has_meta(results: Sequence[StoredResult]) -> bool:
    """Every parsed sample carries a meta RM rating (the run was scored with --meta-rm)."""
    parsed = [s for r in results for s in r.samples if s.scores is not None]
    return bool(parsed) and all(s.meta_score is not None for s in parsed)


def k_meta_sweep(results: Sequence[StoredResult], seed: int = 0) -> list[tuple[int, float]]:
    """Accuracy with all K samples when only the k_meta best-rated vote, for k_meta = 1, K/4, K/2, K
    (K = 32 gives the paper's Table 7 sweep: 1, 8, 16, and 32 = plain voting)."""
    max_k = max(len(r.samples) for r in results)
    prepared = _prepare(results, seed)
    rng = np.random.default_rng(seed)
    out = []
    for m in sorted({1, max(1, max_k // 4), max(1, max_k // 2), max_k}):
        out.append((m, float(_draw_accuracy(prepared, max_k, 1, rng, lambda _k, m=m: m)[0])))
    return out


@dataclass
class EvalSummary:
    """Everything `grm eval` reports for one run."""

    model: str
    template: str
    k: int
    seed: int
    records: int
    overall: Accuracy
    subsets: dict[str, Accuracy]
    sections: dict[str, float]
    pairwise: Accuracy | None
    best_of_n: Accuracy | None
    diagnostics: dict
    curve: list[CurvePoint] = field(default_factory=list)
    name: str = ""
    meta_curve: list[CurvePoint] = field(default_factory=list)  # meta-RM-guided voting@k (k_meta = k/2)
    meta_sweep: list[tuple[int, float]] = field(default_factory=list)  # (k_meta, accuracy) at the full k
    single: Accuracy | None = None  # single-response records with a 0/1 label
    benchmark: dict | None = None  # the benchmark's own metrics (evaluation.benchmarks.evaluate), when run as one
    adaptive: dict | None = None  # adaptive voting replayed on the stored samples (evaluation.adaptive): rule, risk, curve

    def to_json(self) -> dict:
        """Shaped like RewardBench's results file: model, per-subset accuracies at the top level."""
        out: dict = {"model": self.model, "model_type": "Generative RM", "template": self.template, "k": self.k, "seed": self.seed}
        for name, acc in sorted(self.subsets.items()):
            if name not in out:
                out[name] = acc.accuracy
        out["sections"] = self.sections
        out["grm_eval"] = {
            "name": self.name,
            "records": self.records,
            "overall": self.overall.to_json(),
            "subsets": {k: v.to_json() for k, v in sorted(self.subsets.items())},
            "pairwise": self.pairwise.to_json() if self.pairwise else None,
            "best_of_n": self.best_of_n.to_json() if self.best_of_n else None,
            "diagnostics": self.diagnostics,
            "curve": [p.to_json() for p in self.curve],
            "meta_curve": [p.to_json() for p in self.meta_curve],
            "meta_sweep": [{"k_meta": m, "accuracy": a} for m, a in self.meta_sweep],
            "single_response": self.single.to_json() if self.single else None,
        }
        if self.benchmark is not None:
            out["benchmark"] = self.benchmark
        if self.adaptive is not None:
            out["grm_eval"]["adaptive"] = self.adaptive
        return out

    @classmethod
    def from_json(cls, obj: dict, source: str) -> "EvalSummary":
        try:
            g = obj["grm_eval"]

            def acc(d):
                return Accuracy(d["count"], d["accuracy"], d["strict_accuracy"], d["tie_rate"], d["no_verdict_rate"]) if d else None

            return cls(
                model=obj.get("model", ""), template=obj.get("template", ""), k=int(obj.get("k", 0)), seed=int(obj.get("seed", 0)),
                records=int(g["records"]), overall=acc(g["overall"]), subsets={k: acc(v) for k, v in g["subsets"].items()},
                sections=obj.get("sections", {}), pairwise=acc(g.get("pairwise")), best_of_n=acc(g.get("best_of_n")),
                diagnostics=g.get("diagnostics", {}), curve=[CurvePoint(**p) for p in g.get("curve", [])], name=Path(source).stem,
                meta_curve=[CurvePoint(**p) for p in g.get("meta_curve", [])],
                meta_sweep=[(int(x["k_meta"]), float(x["accuracy"])) for x in g.get("meta_sweep", [])],
                single=acc(g.get("single_response")), benchmark=obj.get("benchmark"), adaptive=g.get("adaptive"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"not a `grm eval --json` summary ({type(e).__name__}: {e})", source) from None


def diagnostics(results: Sequence[StoredResult]) -> dict:
    samples = [s for r in results for s in r.samples]
    forced_known = [s for s in samples if s.forced_tail is not None]
    margins = []
    for r in results:
        v = vote([s.scores for s in r.samples], r.n)
        if v.margin is not None and v.votes:
            margins.append(v.margin / v.votes)
    n_rec = len(results) or 1
    modes = sorted({r.principles_mode for r in results})
    first_wins, first_chance = first_shown_wins(results)
    return {
        "principles_mode": modes[0] if len(modes) == 1 else "+".join(modes),
        "given_principles_rate": _mean([float(r.principles_mode == "given") for r in results]),
        "oracle_rate": _mean([float(r.oracle) for r in results]),
        "samples": len(samples),
        "parse_failure_rate": _mean([float(s.scores is None) for s in samples]),
        "forced_tail_rate": _mean([float(bool(s.forced_tail)) for s in forced_known]),
        "position_consistency": position_consistency(results),
        "first_shown_wins_rate": first_wins,
        "first_shown_chance": first_chance,
        "mean_margin_per_sample": _mean(margins),
        "prompt_tokens_per_record": sum(s.prompt_tokens for s in samples) / n_rec,
        "completion_tokens_per_record": sum(s.completion_tokens for s in samples) / n_rec,
        "seconds_per_record": sum(s.seconds for s in samples) / n_rec,
        "samples_per_record": len(samples) / n_rec,
        "stopped_early_rate": _mean([float(r.stopped_by is not None) for r in results]),
    }


def evaluate(results: Sequence[StoredResult], *, seed: int = 0, draws: int = 200, name: str = "", allow_unlabelled: bool = False) -> EvalSummary:
    """All metrics of one run. Records without a label are left out, and counted; single responses with a 0/1
    label are reported apart. allow_unlabelled: a benchmark run, whose own metric needs no "preferred"
    (RM-Bench's grid, RewardBench 2's Ties, PPE correctness), so none labelled is not an error."""
    labelled = _labelled(results)
    singles = [r for r in results if r.n == 1 and r.label is not None]
    if not results or (not labelled and not singles and not allow_unlabelled):
        raise InputError("no labelled records: eval needs \"preferred\" or \"chosen\"/\"rejected\" (2 or more responses), or a 0/1 \"label\" (one response)", name or None)
    by_subset: dict[str, list[StoredResult]] = {}
    for r in labelled:
        by_subset.setdefault(r.subset or "(none)", []).append(r)
    subsets = {s: accuracy(rs, seed) for s, rs in by_subset.items()}
    pairs = [r for r in labelled if r.n == 2]
    bon = [r for r in labelled if r.n > 2]
    pool = labelled or list(results)
    diag = diagnostics(pool)
    diag["unlabelled_records_skipped"] = len(results) - len(labelled) - len(singles)
    return EvalSummary(
        model=pool[0].model,
        template=pool[0].template,
        k=max(len(r.samples) for r in pool),
        seed=seed,
        records=len(labelled),
        overall=accuracy(labelled, seed),
        subsets=subsets,
        sections=rewardbench_sections(subsets),
        pairwise=accuracy(pairs, seed) if pairs and bon else None,
        best_of_n=accuracy(bon, seed) if bon else None,
        diagnostics=diag,
        curve=scaling_curve(labelled, seed, draws),
        name=name,
        meta_curve=scaling_curve(labelled, seed, draws, meta=True) if has_meta(labelled) else [],
        meta_sweep=k_meta_sweep(labelled, seed) if has_meta(labelled) else [],
        single=single_accuracy(singles) if singles else None,
    )


def read_results_text(text: str, source: str) -> list[StoredResult]:
    from grm_cli.io.jsonl import json_lines

    return [result_from_json(obj, source, lineno) for lineno, obj in json_lines(text, source)]


def is_results_line(obj: object) -> bool:
    return isinstance(obj, dict) and "samples" in obj and "run" in obj


def fmt(x: float | None, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.1f}" if pct else f"{x:.2f}"


@dataclass(frozen=True)
class EvalInput:
    """What a file given to `grm eval` holds: labelled records to score, stored results, or a summary."""

    kind: str  # "records" | "results" | "summary"
    source: str
    records: list = field(default_factory=list)
    results: list = field(default_factory=list)
    summary: EvalSummary | None = None
    benchmark: str | None = None  # the benchmark the file was read as (evaluation.benchmarks)
    notes: dict = field(default_factory=dict)  # what the benchmark reader left out, and why


def read_eval_input(path: str, errors: list | None = None) -> EvalInput:
    """Tell what a file holds. With an `errors` list, bad or unlabelled records are collected, not raised."""
    from grm_cli.io.jsonl import loads_bounded, parse_jsonl, read_text_input

    name, text = read_text_input(path, lenient=errors is not None)
    stripped = text.strip()
    if stripped.startswith("{") and _is_json(stripped):  # one JSON document, maybe pretty-printed
        obj = loads_bounded(stripped)
        if isinstance(obj, dict) and "grm_eval" in obj:
            return EvalInput("summary", name, summary=EvalSummary.from_json(obj, name))
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    try:
        head = loads_bounded(first)
    except ValueError:  # not JSON, or nested too deep: parse_jsonl below locates it
        head = None
    if is_results_line(head):
        return EvalInput("results", name, results=read_results_text(text, name))
    if is_speed_line(head):
        raise InputError("is a speed log of `grm score --output` (OUTPUT.runs.jsonl), not results or records to evaluate", name)
    labelled = []
    for rec in parse_jsonl(text, name, errors=errors):
        problem = None
        if len(rec.responses) == 1:
            if rec.label is None:
                problem = InputError('no label: a single response needs a 0/1 "label" (true = correct); 2 or more responses need "preferred"', rec.source, rec.line)
        elif rec.preferred is None:
            problem = InputError('no label: eval needs "preferred" (index of the best response) or "chosen"/"rejected"', rec.source, rec.line)
        if problem is None:
            labelled.append(rec)
        elif errors is None:
            raise problem
        else:
            errors.append(problem)
    return EvalInput("records", name, records=labelled)


def _is_json(text: str) -> bool:
    from grm_cli.io.jsonl import loads_bounded

    try:
        loads_bounded(text)
        return True
    except ValueError:
        return False
