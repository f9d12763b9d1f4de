"""What the benchmark modules share.

A published row becomes one grm record (or, when it has more responses than one prompt takes, several
records scored apart and merged, see `make_records`). The benchmark's own id, subset and whatever its metric
needs (which responses are correct, the style grid, the order shown) travel in the record's "benchmark"
field, which `grm score --output` stores with every result (its "input"), so the metric is recomputed from
a results file alone. `items` groups stored results back into the benchmark's items with their voted totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from grm_cli.core.records import MAX_RESPONSES, Record, record_from_dict
from grm_cli.core.voting import vote
from grm_cli.errors import InputError
from grm_cli.evaluation.benchmarks.files import Row
from grm_cli.scoring.results import StoredResult

PART_LIMIT = MAX_RESPONSES  # responses one prompt takes; longer items are scored in parts of at most this many


def make_records(row: Row, name: str, item: str, prompt: Any, responses: Sequence[str], *, subset: str | None,
                 preferred: int | None = None, meta: dict | None = None) -> list[Record]:
    """The grm record(s) of one benchmark item.

    An item with more responses than PART_LIMIT is split into consecutive parts of at most PART_LIMIT
    responses, each its own record (id ITEM/partI), and the metric concatenates the parts' voted totals.
    Pointwise scores are absolute (1..10 per response), which is what makes the merge meaningful; but each
    part's scores were given without seeing the other parts' responses, so they are less comparable across
    parts than within one. Parts carry no "preferred" (none of them alone is the item)."""
    n = len(responses)
    parts = max(1, -(-n // PART_LIMIT))
    size = -(-n // parts)  # even parts: 32 -> 16 + 16, 20 -> 10 + 10
    out = []
    for p in range(parts):
        lo, hi = p * size, min(n, (p + 1) * size)
        d: dict = {
            "id": item if parts == 1 else f"{item}/part{p + 1}",
            "prompt": prompt,
            "responses": list(responses[lo:hi]),
            "benchmark": {"name": name, "item": item, "part": p, "parts": parts, "offset": lo, **(meta or {})},
        }
        if subset is not None:
            d["subset"] = subset
        if preferred is not None and parts == 1:
            d["preferred"] = preferred
        try:
            out.append(record_from_dict(d, row.source, row.line))
        except InputError as e:
            raise row.error(e.message) from None
    return out


def check_unique(records: list[Record]) -> None:
    """Item ids are the benchmark's own: a repeated one is a located error naming both rows."""
    seen: dict[str, Record] = {}
    for rec in records:
        if rec.id in seen:
            first = seen[rec.id]
            raise InputError(f"duplicate item id {rec.id!r} (first at {first.source}:{first.line})", rec.source, rec.line)
        seen[rec.id] = rec


@dataclass
class Item:
    """One benchmark item: its stored result(s) and the voted totals of all its responses (parts joined)."""

    id: str
    subset: str | None
    meta: dict
    results: list[StoredResult]
    totals: tuple | None  # None: some part got no parsed sample (no verdict)

    @property
    def n(self) -> int:
        return sum(r.n for r in self.results)


def meta_of(r: StoredResult, name: str) -> dict:
    m = r.benchmark
    if not isinstance(m, dict) or m.get("name") != name:
        got = f'"{m.get("name")}"' if isinstance(m, dict) else "no benchmark fields"
        raise InputError(f"result {r.id!r} was not scored from {name} files ({got} in its stored input): "
                         f"score the benchmark's files with `grm eval FILE --benchmark {name} -o RESULTS` first")
    return m


def items(results: Sequence[StoredResult], name: str) -> tuple[list[Item], int]:
    """The benchmark's items from stored results, parts merged in order; also how many items are incomplete
    (a part missing, e.g. an interrupted run), which are left out."""
    groups: dict[str, list[tuple[int, StoredResult, dict]]] = {}
    for r in results:
        m = meta_of(r, name)
        groups.setdefault(str(m.get("item", r.id)), []).append((int(m.get("part", 0)), r, m))
    out, incomplete = [], 0
    for key, parts in groups.items():
        parts.sort(key=lambda t: t[0])
        want = int(parts[0][2].get("parts", 1))
        if [p for p, _, _ in parts] != list(range(want)):
            incomplete += 1
            continue
        totals: list | None = []
        for _, r, _ in parts:
            v = vote([s.scores for s in r.samples], r.n)
            if v.totals is None:
                totals = None
                break
            totals.extend(v.totals)
        rs = [r for _, r, _ in parts]
        out.append(Item(key, rs[0].subset, parts[0][2], rs, tuple(totals) if totals is not None else None))
    return out, incomplete


def mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
