"""RM-Bench (THU-KEG/RM-Bench): data/total_dataset.json, a JSON array of {"id", "prompt", "chosen": [3],
"rejected": [3], "domain"}, or the domain files data/{chat,code,math,safety-refuse,safety-response}_filtered.json
({"id", "subset", "prompt", "chosen", "rejected", "error_key", "error"}: no "domain", the file is the domain),
one or a folder of them; the three responses of each side in the styles concise, detailed plain text,
detailed markdown. Ids repeat across domain files (23 between chat and code), so a domain file's row gets
the id DOMAIN/ID, the form total_dataset.json's ids already have ("chat/0").

One row is one grm record of six responses (chosen 0-2, rejected 3-5) scored in one prompt: every response
gets its own pointwise score, so the 3 x 3 grid of (chosen style i, rejected style j) comparisons comes
from one judgment (RM-Bench scores each response alone; here the judge sees all six together).

Metric (RM-Bench's README): M[i][j] = share of rows where chosen i scores above rejected j (a tie is wrong:
Eq. 10 on the pair); hard = mean of the upper triangle (chosen plainer than rejected), normal = the
diagonal, easy = the lower triangle. Per domain (chat, math, code, safety: "safety-refuse" and
"safety-response" together) the domain score is the mean of its hard, normal and easy; hard_acc,
normal_acc, easy_acc and total_avg_acc are means over the domains present, as scripts/utils.py computes them
(`score_chosen[i] > score_rejected[j]`: a tie is wrong).
"""

from __future__ import annotations

from pathlib import Path

from grm_cli.core.rules import is_correct
from grm_cli.evaluation.benchmarks.common import items, make_records, mean
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.scoring.results import StoredResult

NAME = "rm-bench"
TITLE = "RM-Bench"
DOMAINS = ("chat", "math", "code", "safety")
STYLES = ("concise", "detailed", "markdown")
RULE = "3 x 3 style grid of chosen-above-rejected (a tie is wrong, RM-Bench's scripts/utils.py and Eq. 10); hard/normal/easy per domain"
LAYOUT = 'a JSON array of {"id", "prompt", "chosen": [3 styles], "rejected": [3 styles], "domain"}, or a domain file DOMAIN_filtered.json without "domain"'


def matches(row: dict) -> bool:
    """total_dataset.json's rows (with "domain") or a domain file's (with "error_key")."""
    return isinstance(row.get("chosen"), list) and isinstance(row.get("rejected"), list) and (isinstance(row.get("domain"), str) or "error_key" in row)


def domain_of_file(path: str) -> str | None:
    """The domain a domain file holds, from its name: chat_filtered.json -> chat, safety-refuse_filtered.json -> safety-refuse."""
    stem = Path(path).name.split(".")[0]
    name = stem[: -len("_filtered")] if stem.endswith("_filtered") else stem
    return name if _domain(name) is not None else None


def _domain(d: str) -> str | None:
    return next((x for x in DOMAINS if d.startswith(x)), None)


def records(rows: list[Row]) -> tuple[list, dict]:
    out = []
    for row in rows:
        what = "three responses: concise, detailed plain text, detailed markdown"
        rid = row.field("id", (str, int), "the row's id")
        prompt = row.text("prompt", "the prompt (a string)")
        chosen = row.texts("chosen", what, minimum=3)
        rejected = row.texts("rejected", what, minimum=3)
        if len(chosen) != 3 or len(rejected) != 3:
            raise row.error(f'fields "chosen"/"rejected": {len(chosen)} and {len(rejected)} responses, expected {what} each')
        item = str(rid)
        if "domain" in row.data:
            domain = row.text("domain", "chat, code, math, safety-refuse or safety-response")
            if _domain(domain) is None:
                raise row.error(f'field "domain": {domain!r}, expected chat, code, math, safety-refuse or safety-response')
        else:
            domain = domain_of_file(row.source)
            if domain is None:
                raise row.error(f'no "domain" field, and the file name {Path(row.source).name!r} names no domain: expected total_dataset.json\'s rows '
                                "(with \"domain\") or a domain file as RM-Bench names them (chat_filtered.json, code_, math_, safety-refuse_, safety-response_)")
            item = f"{domain}/{rid}"
        out += make_records(row, NAME, item, prompt, chosen + rejected, subset=domain, meta={"id": rid, "domain": domain})
    return out, {}


def grid(totals) -> list[list[float]]:
    """M[i][j] for one row: 1 when chosen style i scores above rejected style j (Eq. 10 on that pair)."""
    if totals is None:
        return [[0.0] * 3 for _ in range(3)]
    return [[float(is_correct((totals[i], totals[3 + j]), 0)) for j in range(3)] for i in range(3)]


def hard_normal_easy(grids: list[list[list[float]]]) -> dict[str, float]:
    m = [[sum(g[i][j] for g in grids) / len(grids) for j in range(3)] for i in range(3)]
    return {
        "hard_acc": (m[0][1] + m[0][2] + m[1][2]) / 3,
        "normal_acc": (m[0][0] + m[1][1] + m[2][2]) / 3,
        "easy_acc": (m[1][0] + m[2][0] + m[2][1]) / 3,
    }


def metrics(results: list[StoredResult], seed: int = 0) -> tuple[dict, dict]:
    its, incomplete = items(results, NAME)
    by_domain: dict[str, list] = {}
    for it in its:
        by_domain.setdefault(_domain(str(it.meta["domain"])) or str(it.meta["domain"]), []).append(grid(it.totals))
    per = {d: hard_normal_easy(g) for d, g in by_domain.items()}
    out: dict = {}
    for d in DOMAINS:
        if d in per:
            out[d] = mean(list(per[d].values()))
    if per:
        for key in ("hard_acc", "normal_acc", "easy_acc"):
            out[key] = mean([p[key] for p in per.values()])
        out["total_avg_acc"] = mean([mean(list(p.values())) for p in per.values()])
    return out, {"per_domain": per, "counts": {d: len(g) for d, g in sorted(by_domain.items())}, "incomplete_items": incomplete}
