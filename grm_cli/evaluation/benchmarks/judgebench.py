"""JudgeBench (ScalerLab/JudgeBench, data/dataset=judgebench,response_model=*.jsonl or the hub's gpt/claude
splits): rows {"pair_id", "original_id", "source", "question", "response_model", "response_A", "response_B",
"label": "A>B" | "B>A"}.

JudgeBench judges every pair twice, (A, B) and then (B, A). Each order is a record of its own here
(ids PAIR:AB and PAIR:BA), scored without shuffling (`grm eval --benchmark judgebench` turns it off), so
each order's verdict is its own scored sample(s). The metric reads the order each sample was actually shown
in, so a run scored with shuffling is still split by the order seen.

Metric (JudgeBench's utils/metrics.py): each order's decision is A>B, B>A or a tie (A=B; no parsed sample:
none); a decision equal to the label counts +1, the opposite one -1, a tie or none 0; the pair is right when
the sum is positive. So an inconsistent pair (A>B one way, B>A the other) is wrong, and one decisive right
answer with a tie the other way is right. Paper's rule (Eq. 10) beside it: "both_orders_right" (each
order strictly right). Per category: knowledge (mmlu-pro-*), reasoning (livebench-reasoning), math
(livebench-math), coding (livecodebench).
"""

from __future__ import annotations

from grm_cli.core.rules import argmax_unique
from grm_cli.core.voting import vote
from grm_cli.evaluation.benchmarks.common import make_records, mean, meta_of
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.scoring.results import StoredResult

NAME = "judgebench"
TITLE = "JudgeBench"
RULE = "both orders judged; +1 per order matching the label, -1 per opposite, right when positive (inconsistent = wrong)"
CATEGORIES = (("knowledge", "mmlu-pro"), ("reasoning", "livebench-reasoning"), ("math", "livebench-math"), ("coding", "livecodebench"))
FLIP = {"A>B": "B>A", "B>A": "A>B"}


def matches(row: dict) -> bool:
    return "pair_id" in row and "response_A" in row and "response_B" in row


def category(source: str) -> str:
    return next((name for name, prefix in CATEGORIES if source.startswith(prefix)), source)


def records(rows: list[Row]) -> tuple[list, dict]:
    out = []
    for row in rows:
        pid = row.field("pair_id", (str, int), "the pair's id")
        question = row.text("question", "the question (a string)")
        a = row.text("response_A", "response A (a string)")
        b = row.text("response_B", "response B (a string)")
        label = row.field("label", str, '"A>B" or "B>A"')
        if label not in FLIP:
            raise row.error(f'field "label": {label!r}, expected "A>B" or "B>A"')
        source = row.field("source", str, "the question's source dataset") if "source" in row.data else ""
        meta = {"pair_id": pid, "label": label, "source": source}
        out += make_records(row, NAME, f"{pid}:AB", question, [a, b], subset=source or None, preferred=0 if label == "A>B" else 1,
                            meta={**meta, "order": "AB"})
        out += make_records(row, NAME, f"{pid}:BA", question, [b, a], subset=source or None, preferred=1 if label == "A>B" else 0,
                            meta={**meta, "order": "BA"})
    return out, {}


def decision(totals) -> str | None:
    if totals is None:
        return None
    best = argmax_unique(totals)
    return "A=B" if best is None else ("A>B" if best == 0 else "B>A")


def pair_decisions(results: list[StoredResult]) -> dict[str, tuple[dict, str | None, str | None]]:
    """pair id -> (meta, decision with A shown first, decision with B shown first), in A/B terms."""
    shown: dict[str, dict[str, list]] = {}
    metas: dict[str, dict] = {}
    for r in results:
        m = meta_of(r, NAME)
        pid = str(m["pair_id"])
        metas[pid] = m
        for s in r.samples:
            if s.scores is None:
                shown.setdefault(pid, {}).setdefault("A" if (s.order[0] == 0) == (m["order"] == "AB") else "B", []).append(None)
                continue
            ab = tuple(s.scores) if m["order"] == "AB" else (s.scores[1], s.scores[0])
            first = "A" if (s.order[0] == 0) == (m["order"] == "AB") else "B"
            shown.setdefault(pid, {}).setdefault(first, []).append(ab)
    out = {}
    for pid, m in metas.items():
        by = shown.get(pid, {})
        d1 = decision(vote(by["A"], 2).totals) if "A" in by else None
        d2 = decision(vote(by["B"], 2).totals) if "B" in by else None
        out[pid] = (m, d1, d2)
    return out


def metrics(results: list[StoredResult], seed: int = 0) -> tuple[dict, dict]:
    pairs = pair_decisions(results)
    rows: dict[str, list[dict]] = {}
    for m, d1, d2 in pairs.values():
        label = m["label"]
        counter = sum(1 if d == label else -1 if d == FLIP[label] else 0 for d in (d1, d2))
        rows.setdefault(category(str(m.get("source", ""))), []).append({
            "right": float(counter > 0), "both": float(d1 == label and d2 == label), "neither": float(d1 != label and d2 != label),
            "inconsistent": float(d1 != d2), "nulls": float(d1 is None or d2 is None), "one_order": float((d1 is None) != (d2 is None)),
            "first_order": float(d1 == label),
        })
    every = [x for v in rows.values() for x in v]
    out: dict = {"accuracy": mean([x["right"] for x in every])}
    for name, _ in CATEGORIES:
        if name in rows:
            out[name] = mean([x["right"] for x in rows[name]])
    for name in sorted(set(rows) - {c for c, _ in CATEGORIES}):
        out[name] = mean([x["right"] for x in rows[name]])
    details = {key: mean([x[key] for x in every]) for key in ("both", "neither", "inconsistent", "nulls", "first_order")}
    details = {"both_orders_right": details["both"], "both_orders_wrong": details["neither"], "inconsistent": details["inconsistent"],
               "no_decision_in_an_order": details["nulls"], "first_order_accuracy": details["first_order"],
               "pairs": len(every), "pairs_judged_in_one_order_only": int(sum(x["one_order"] for x in every)),
               "counts": {k: len(v) for k, v in sorted(rows.items())},
               # the paper's rule beside JudgeBench's: each order's judgment strictly right
               "eq10": {"both orders right": details["both"], "first order right": details["first_order"]}}
    return out, details
