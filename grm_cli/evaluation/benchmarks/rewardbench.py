"""RewardBench (v1, allenai/reward-bench): rows {"prompt", "chosen", "rejected", "subset", "id"} (the
"filtered" split, parquet on the hub, or the same rows as JSON/JSONL).

Metric (RewardBench's): per subset, a row is right when the chosen response scores above the rejected one
(a tie is wrong: the same rule as the paper's Eq. 10); sections Chat, Chat Hard, Safety, Reasoning weight
their subsets by RewardBench's example counts (math-prm weighted as the six code subsets together), and the
score is the mean of the four sections (`metrics.rewardbench_sections`). grm's summary beside it breaks ties
by a seeded pick (§5.1), so its sections can differ from these on tied records.
"""

from __future__ import annotations

from grm_cli.core.rules import is_correct
from grm_cli.evaluation.benchmarks.common import make_records, mean
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.evaluation.metrics import REWARDBENCH_COUNTS, Accuracy, rewardbench_sections
from grm_cli.scoring.results import StoredResult

NAME = "rewardbench"
TITLE = "RewardBench"
RULE = "chosen above rejected (a tie is wrong, as Eq. 10); sections weighted by RewardBench's example counts"
LAYOUT = 'rows {"prompt", "chosen": str, "rejected": str, "subset", "id"}'


def matches(row: dict) -> bool:
    return isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str) and row.get("subset") in REWARDBENCH_COUNTS and "id" in row


def records(rows: list[Row]) -> tuple[list, dict]:
    out = []
    for row in rows:
        what = f"RewardBench's layout, {LAYOUT}"
        prompt = row.text("prompt", "the prompt (a string)")
        chosen, rejected = row.text("chosen", what), row.text("rejected", what)
        subset = row.text("subset", "the RewardBench subset name")
        rid = row.field("id", (str, int), "the row's id")
        out += make_records(row, NAME, str(rid), prompt, [chosen, rejected], subset=subset, preferred=0, meta={"id": rid, "subset": subset})
    return out, {}


def metrics(results: list[StoredResult], seed: int = 0) -> tuple[dict, dict]:
    from grm_cli.core.voting import vote

    by_subset: dict[str, list[float]] = {}
    for r in results:
        m = r.benchmark if isinstance(r.benchmark, dict) and r.benchmark.get("name") == NAME else {}
        subset = m.get("subset") or r.subset or "(none)"
        v = vote([s.scores for s in r.samples], r.n)
        right = r.preferred is not None and v.totals is not None and is_correct(v.totals, r.preferred)
        by_subset.setdefault(subset, []).append(float(right))
    subsets = {k: mean(v) for k, v in sorted(by_subset.items())}
    sections = rewardbench_sections({k: Accuracy(len(by_subset[k]), a, a, None, None) for k, a in subsets.items()})
    unknown = sorted(k for k in subsets if k not in REWARDBENCH_COUNTS)
    return {**sections, **subsets}, {"counts": {k: len(v) for k, v in sorted(by_subset.items())}, "subsets_outside_rewardbench": unknown}
