"""PPE, Preference Proxy Evaluations (lmarena-ai/PPE-* on the hub, github.com/lmarena/PPE).

- Human preference (lmarena-ai/PPE-Human-Preference-V1): rows {"question_id", "model_a", "model_b",
  "winner", "prompt", "response_1", "response_2", ...}; winner "model_a" -> response_1 preferred,
  "model_b" -> response_2; ties ("tie", "tie (bothbad)") have no preferred response and are left out
  (counted in the notes), as are correctness rows with an empty sampled response (grm judges none).
- Correctness (lmarena-ai/PPE-{MMLU-Pro,MATH,GPQA,MBPP-Plus,IFEval}-Best-of-K): rows {"question_id",
  "prompt", "response_1".."response_K", "scores": [K booleans: is response i correct], "model_name", ...}.
  K = 32 is more than one prompt takes (16): such a row is scored in two parts of 16 whose voted totals are
  joined (common.make_records says what that does to pointwise scores). Which benchmark a file holds is
  read from its path (the dataset names carry it), e.g. .../PPE-MATH-Best-of-K/...

Metrics: "PPE-P" = human preference accuracy (a tie between the voted totals is wrong, Eq. 10).
Correctness per benchmark: "accuracy" = the mean over prompts of the share of the prompt's (correct,
incorrect) response pairs where the correct one scores higher (the row's "sampled_conflict_pairs" when it
has them, else every such pair; a tie is wrong; prompts whose responses are all right or all wrong have no
such pair and are left out, counted in the details). Whether PPE averages per prompt or over all pairs
pooled was not verified against its code (with a fixed number of sampled pairs per prompt they agree); "best_of_k" = correctness of the top-scored response (a shared top: the mean over the tied);
"PPE-C" = mean of the benchmarks' accuracies (the SPCT paper's PPE Correctness is the mean over MMLU-Pro,
MATH, GPQA, MBPP-Plus, IFEval). PPE's other correctness metrics (loss, end score, AUC) are not computed.
"""

from __future__ import annotations

from itertools import product

from grm_cli.core.rules import is_correct, tied_best
from grm_cli.evaluation.benchmarks.common import items, make_records, mean
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.scoring.results import StoredResult

NAME = "ppe"
TITLE = "PPE"
RULE = "preference: Eq. 10 on the pair; correctness: pairwise accuracy over conflict pairs (a tie is wrong) and best-of-K"
CORRECTNESS = (("mmlu-pro", "MMLU-Pro"), ("mmlu_pro", "MMLU-Pro"), ("gpqa", "GPQA"), ("mbpp", "MBPP-Plus"), ("ifeval", "IFEval"), ("math", "MATH"))
TIES = ("tie", "tie (bothbad)")


def matches(row: dict) -> bool:
    return "question_id" in row and "response_1" in row and ("winner" in row or "scores" in row)


def _benchmark_of(path: str) -> str:
    low = path.lower()
    return next((name for key, name in CORRECTNESS if key in low), "correctness")


def records(rows: list[Row]) -> tuple[list, dict]:
    out, ties, empty = [], 0, 0
    for row in rows:
        qid = row.field("question_id", (str, int), "the question's id")
        prompt = row.text("prompt", "the prompt (a string)")
        if "winner" in row.data:
            winner = row.field("winner", str, '"model_a", "model_b" or a tie')
            if winner in TIES:
                ties += 1
                continue
            if winner not in ("model_a", "model_b"):
                raise row.error(f'field "winner": {winner!r}, expected "model_a", "model_b", "tie" or "tie (bothbad)"')
            responses = [row.text("response_1", "model_a's response"), row.text("response_2", "model_b's response")]
            out += make_records(row, NAME, f"preference:{qid}", prompt, responses, subset="human-preference",
                                preferred=0 if winner == "model_a" else 1, meta={"id": qid, "kind": "preference"})
            continue
        scores = row.field("scores", list, "a list of booleans, one per response (is response i correct)")
        if not scores or not all(isinstance(x, bool) for x in scores):
            raise row.error('field "scores": expected a non-empty list of booleans (is response i correct)')
        for i in range(1, len(scores) + 1):
            row.field(f"response_{i}", str, f"response {i} of {len(scores)} (one per entry of \"scores\")")
        responses = [row.data[f"response_{i}"] for i in range(1, len(scores) + 1)]
        if not all(r.strip() for r in responses):  # a sampled answer can be empty; grm judges no empty response
            empty += 1
            continue
        bench = _benchmark_of(row.source)
        pairs = row.data.get("sampled_conflict_pairs")
        meta = {"id": qid, "kind": "correctness", "benchmark": bench, "correct": [bool(x) for x in scores]}
        if isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) and 0 <= i < len(scores) for i in p) for p in pairs):
            meta["conflict_pairs"] = pairs
        out += make_records(row, NAME, f"{bench}:{qid}", prompt, responses, subset=bench, meta=meta)
    notes = {"preference_ties_left_out": ties, "correctness_rows_with_an_empty_response_left_out": empty}
    return out, {k: v for k, v in notes.items() if v}


def _conflict_pairs(correct: list[bool], given) -> list[tuple[int, int]]:
    """(correct index, incorrect index) pairs of one prompt."""
    if given:
        return [(i, j) if correct[i] else (j, i) for i, j in given if correct[i] != correct[j]]
    return [(i, j) for i, j in product(range(len(correct)), repeat=2) if correct[i] and not correct[j]]


def metrics(results: list[StoredResult], seed: int = 0) -> tuple[dict, dict]:
    its, incomplete = items(results, NAME)
    pref: list[float] = []
    acc: dict[str, list[float]] = {}
    bok: dict[str, list[float]] = {}
    no_pairs: dict[str, int] = {}
    for it in its:
        m = it.meta
        if m.get("kind") == "preference":
            pref.append(float(it.totals is not None and it.results[0].preferred is not None and is_correct(it.totals, it.results[0].preferred)))
            continue
        bench, correct = str(m["benchmark"]), list(m["correct"])
        if it.totals is None:
            bok.setdefault(bench, []).append(0.0)
        else:
            top = tied_best(it.totals)
            bok.setdefault(bench, []).append(sum(correct[i] for i in top) / len(top))
        pairs = _conflict_pairs(correct, m.get("conflict_pairs"))
        if not pairs:
            no_pairs[bench] = no_pairs.get(bench, 0) + 1
            continue
        right = [float(it.totals is not None and is_correct((it.totals[i], it.totals[j]), 0)) for i, j in pairs]
        acc.setdefault(bench, []).append(sum(right) / len(right))
    out: dict = {}
    if pref:
        out["PPE-P"] = mean(pref)
    for bench in sorted(bok):
        out[bench] = {"accuracy": mean(acc.get(bench, [])), "best_of_k": mean(bok[bench])}
    accs = [v["accuracy"] for v in out.values() if isinstance(v, dict) and v["accuracy"] is not None]
    if accs:
        out["PPE-C"] = mean(accs)
    details = {"preference_pairs": len(pref), "correctness_prompts": {b: len(v) for b, v in sorted(bok.items())},
               "prompts_without_conflict_pairs": no_pairs, "incomplete_items": incomplete}
    return out, details
