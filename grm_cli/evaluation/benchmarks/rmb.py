"""RMB (Zhou-Zoey/RMB-Reward-Model-Benchmark, RMB_dataset/): JSON arrays, one file per scenario.

- Pairwise_set/{Helpfulness,Harmlessness}/...json: {"pair_uid", "conversation_input": [{"role", "content",
  "language"}], "chosen": {"llm_name", "answer"}, "reject": {"llm_name", "answer"}, "category_path"}
- BoN_set/...json: {"bon_uid", "conversation_input", "bon_best": {"llm_name", "answer"},
  "loser_list": [{"llm_name", "answer"}, ...], "category_path"}

A pair is a record (chosen first); a best-of-N item is one record, the best first, all its answers
scored in one prompt. Metric: a pair is right when chosen scores above reject, a BoN item when bon_best
scores above every loser (Eq. 10 either way: a tie is wrong); accuracy per set and goal, micro-averaged over
the items of that goal (Helpfulness BoN, Helpfulness Pairwise, Harmlessness BoN, Harmlessness Pairwise), and
RMB = the mean of those four (the SPCT paper's RMB column). Per scenario ("category_path") in the details.
"""

from __future__ import annotations

from grm_cli.core.rules import is_correct
from grm_cli.evaluation.benchmarks.common import items, make_records, mean
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.scoring.results import StoredResult

NAME = "rmb"
TITLE = "RMB"
RULE = "pairwise: chosen above reject; BoN: best above every loser (a tie is wrong, Eq. 10); RMB = mean of the four set x goal accuracies"
COLUMNS = ("Helpfulness BoN", "Helpfulness Pairwise", "Harmlessness BoN", "Harmlessness Pairwise")


def matches(row: dict) -> bool:
    return "conversation_input" in row and ("bon_best" in row or "reject" in row)


def _answer(row: Row, value, fld: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str) or not value["answer"].strip():
        raise row.error(f'field "{fld}": expected an object with a non-empty string "answer" (and "llm_name")')
    return value["answer"]


def records(rows: list[Row]) -> tuple[list, dict]:
    out = []
    for row in rows:
        conv = row.field("conversation_input", list, 'the conversation, a list of {"role", "content"}')
        for i, t in enumerate(conv):
            if not isinstance(t, dict) or not isinstance(t.get("role"), str) or not isinstance(t.get("content"), str):
                raise row.error(f'field "conversation_input[{i}]": expected an object with string "role" and "content"')
        turns = [{"role": t["role"], "content": t["content"]} for t in conv]
        path = row.text("category_path", 'the set, goal and scenario, e.g. "Pairwise_set/Helpfulness/Chat/Discussion"')
        parts = path.split("/")
        if len(parts) < 2 or parts[0] not in ("Pairwise_set", "BoN_set") or parts[1] not in ("Helpfulness", "Harmlessness"):
            raise row.error(f'field "category_path": {path!r}, expected "Pairwise_set/..." or "BoN_set/..." then Helpfulness or Harmlessness')
        kind, goal = ("BoN" if parts[0] == "BoN_set" else "Pairwise"), parts[1]
        if kind == "Pairwise":
            uid = row.field("pair_uid", (str, int), "the pair's id")
            responses = [_answer(row, row.data.get("chosen"), "chosen"), _answer(row, row.data.get("reject"), "reject")]
        else:
            uid = row.field("bon_uid", (str, int), "the item's id")
            losers = row.field("loser_list", list, 'the other answers, a list of {"llm_name", "answer"}')
            if not losers:
                raise row.error('field "loser_list": empty; a best-of-N item needs at least one other answer')
            responses = [_answer(row, row.data.get("bon_best"), "bon_best")] + [_answer(row, x, f"loser_list[{i}]") for i, x in enumerate(losers)]
        meta = {"uid": uid, "set": kind, "goal": goal, "category_path": path}
        out += make_records(row, NAME, f"{kind.lower()}:{uid}", turns, responses, subset=path, preferred=0, meta=meta)
    return out, {}


def metrics(results: list[StoredResult], seed: int = 0) -> tuple[dict, dict]:
    its, incomplete = items(results, NAME)
    col: dict[str, list[float]] = {}
    scen: dict[str, list[float]] = {}
    for it in its:
        right = float(it.totals is not None and is_correct(it.totals, 0))
        col.setdefault(f'{it.meta["goal"]} {it.meta["set"]}', []).append(right)
        scen.setdefault(str(it.meta["category_path"]), []).append(right)
    out = {c: mean(col[c]) for c in COLUMNS if c in col}
    if len(out) == len(COLUMNS):
        out["RMB"] = sum(out[c] for c in COLUMNS) / len(COLUMNS)
    return out, {"scenarios": {k: mean(v) for k, v in sorted(scen.items())}, "counts": {k: len(v) for k, v in sorted(col.items())},
                 "incomplete_items": incomplete}
