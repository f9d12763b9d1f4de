"""The report's data: every run's records as the page shows them, in one JSON-able dict.

The page only displays and filters; what a record's verdict is (right, wrong, a tie, no verdict) is decided
here by the same rules `grm eval` counts with (`core.voting.vote`, `core.rules`), so a filter's count and the
summary's accuracy can never disagree. Inputs shared by several runs (the same record judged twice) are
stored once.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from grm_cli.core.records import record_from_dict
from grm_cli.core.rules import break_tie, is_correct, single_response_correct
from grm_cli.core.voting import vote
from grm_cli.errors import InputError
from grm_cli.report.runs import ReportRun
from grm_cli.scoring.results import StoredResult

STATUSES = ("right", "wrong", "tie", "none", "unlabelled")  # "none": no sample parsed, so no verdict (never a 0 or a tie)


def finite(value: Any) -> Any:
    """The value with NaN and infinities as None: JSON has no spelling for them and the page shows None as '-'."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def verdict_of(r: StoredResult, seed: int) -> dict:
    """The vote of a record's samples and how it stands against the label, as `grm eval` counts it:
    Eq. 10 ("right" never includes a tie), ties broken for the reported accuracy by the seeded pick."""
    v = vote([s.scores for s in r.samples], r.n)
    out = {"totals": list(v.totals) if v.totals is not None else None, "best": v.best, "tied": list(v.tied) if v.is_tie else [],
           "margin": v.margin, "votes": v.votes, "unparsed": v.unparsed, "pick": None}
    if v.totals is None:
        out["status"] = "none"
    elif r.n == 1:
        out["status"] = "unlabelled" if r.label is None else ("right" if single_response_correct([s.scores for s in r.samples], r.label) else "wrong")
    elif v.is_tie:
        out["status"] = "tie"
        out["pick"] = break_tie(v.totals, seed, r.id)
    elif r.preferred is None:
        out["status"] = "unlabelled"
    else:
        out["status"] = "right" if is_correct(v.totals, r.preferred) else "wrong"
    return out


def sample_of(s: dict, k: int) -> dict:
    """One sample as its card shows it. The whole generated text is kept only where the parsed parts do not
    already hold it (an unparsed sample, a judge that wrote no critique): it is most of a results file's size."""
    get = s.get
    calls = get("calls") or []
    out = {
        "index": get("index", k), "seed": get("seed"), "order": get("order"),
        "criteria": [[c.get("text"), c.get("weight")] for c in get("criteria") or () if isinstance(c, dict)],
        "critique": get("critique"), "shown": get("scores_shown"), "scores": get("scores"), "expected": get("expected"),
        "verdict": get("verdict"), "error": get("parse_error"), "forced": get("forced_tail"),
        "meta": get("meta_score"), "kept": get("meta_kept"),
        "tokens": [get("prompt_tokens"), get("completion_tokens")], "seconds": get("seconds"),
    }
    if not out["criteria"] and get("principles"):
        out["principles"] = s["principles"]
    if calls:
        out["calls"] = [{"shown": c.get("shown"), "verdict": c.get("verdict"), "error": c.get("parse_error"), "forced": c.get("forced_tail"),
                         **({"text": c.get("text")} if c.get("parse_error") else {})} for c in calls if isinstance(c, dict)]
    if out["error"] or not (get("principles") or out["critique"] or calls):
        out["text"] = get("text")
    return out


def input_of(obj: Any, source: str, line: int) -> dict:
    """The record as judged: its conversation and responses, read by the records reader (so chosen/rejected,
    messages and prompt/responses all land in the response order `preferred` counts in)."""
    try:
        rec = record_from_dict(obj, source, line)
    except InputError:  # an input the records reader would refuse today: shown as it is stored
        return {"context": [], "responses": [], "raw": json.dumps(obj, ensure_ascii=False, indent=1)}
    out: dict = {"context": [[t.role, t.content] for t in rec.context], "responses": list(rec.responses)}
    if rec.rubric is not None:
        out["rubric"] = rec.rubric.criteria + "".join(f"\n{score}: {text}" for score, text in rec.rubric.scores)
    if rec.reference is not None:
        out["reference"] = rec.reference
    return out


class _Inputs:
    """The inputs of all runs, each distinct one stored once and referred to by its index."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self._index: dict[str, int] = {}

    def add(self, item: dict) -> int:
        key = json.dumps(item, sort_keys=True, ensure_ascii=False)
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(item)
        return self._index[key]


def guided_vote(line: dict) -> dict | None:
    """The vote the run itself made when a meta RM chose which samples count (grm eval's accuracy, like the
    page's verdicts, is over all samples; its meta-guided curve is apart)."""
    run = line.get("run") or {}
    if run.get("k_meta") is None:
        return None
    return {"k_meta": run["k_meta"], "totals": line.get("scores"), "best": line.get("best"), "tied": line.get("tied") or []}


def record_of(line: dict, r: StoredResult, lineno: int, source: str, inputs: _Inputs, seed: int) -> dict:
    return {
        "id": r.id, "line": lineno, "subset": r.subset, "n": r.n, "preferred": r.preferred, "label": r.label,
        **verdict_of(r, seed),
        "stopped": r.stopped_by, "used": len(r.samples), "truncated": line.get("truncated_responses") or [],
        "principlesMode": r.principles_mode, "given": line.get("given_principles"), "oracle": r.oracle,
        "guided": guided_vote(line),
        "input": inputs.add(input_of(line.get("input") or {}, source, lineno)),
        "samples": [sample_of(s, k) for k, s in enumerate(line.get("samples") or []) if isinstance(s, dict)],
    }


def run_of(run: ReportRun, inputs: _Inputs, seed: int) -> dict:
    first = run.lines[0].get("run") if run.lines else None
    signature = first if isinstance(first, dict) else {}
    summary = run.summary.to_json() if run.summary is not None else None
    return {
        "name": run.name, "source": run.source,
        "model": signature.get("model") or (run.summary.model if run.summary else ""),
        # a results line names its protocol unless it is the default; a summary alone names only its template
        "protocol": signature.get("protocol") or ("deepseek-grm" if signature else ""), "template": signature.get("template") or (run.summary.template if run.summary else ""),
        "signature": signature, "summary": summary, "seed": seed,
        "records": [record_of(line, r, n, run.source, inputs, seed) for line, r, n in zip(run.lines, run.results, run.line_numbers or range(1, len(run.lines) + 1))],
    }


def unique_names(runs: Sequence[ReportRun]) -> list[str]:
    """Each run's name on the page; two files of one stem (runs/a/results, runs/b/results) get their folder too."""
    given = [r.name for r in runs]
    names = list(given)
    for i, r in enumerate(runs):
        if given.count(r.name) > 1:
            parent = r.source.replace("\\", "/").rstrip("/").split("/")[-2:-1]
            names[i] = f"{parent[0]}/{r.name}" if parent else r.name
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n} ({seen[n]})"
    return names


def report_data(runs: Sequence[ReportRun], *, title: str, seed: int = 0, generated: str = "") -> dict:
    """Everything the page shows, as one JSON-able dict (`finite` makes it strict JSON where a number is NaN)."""
    inputs = _Inputs()
    out_runs = []
    for name, run in zip(unique_names(runs), runs):
        item = run_of(run, inputs, seed)
        item["name"] = name
        out_runs.append(item)
    return {"title": title, "generated": generated, "statuses": list(STATUSES), "runs": out_runs, "inputs": inputs.items}
