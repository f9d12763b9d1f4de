"""Saved principles files: what `grm principles --output` and `--filter` write, read back and checked."""

from __future__ import annotations

import json

from grm_cli.core.records import json_type
from grm_cli.errors import InputError
from grm_cli.io.jsonl import json_lines, looks_like_jsonl, read_text_input


def principles_entry(obj: dict, name: str = "<principles>", lineno: int = 0) -> dict:
    """One saved principles line, checked: {id, prompt, principles, provenance} (+ agreed/runs when filtered)."""
    if "principles" not in obj:
        what = "results of grm score" if "samples" in obj else ("a meta RM" if "head" in obj else "records" if ("responses" in obj or "chosen" in obj) else "")
        looks = f"; it looks like {what}" if what else ""
        raise InputError(f'not a principles file (this line has no "principles" field{looks}): expected the output of `grm principles --output` or `--filter`, or a plain text file', name, lineno)
    p = obj.get("principles")
    if isinstance(p, list) and all(isinstance(x, str) for x in p):
        p = "\n".join(p)
    filtered = "agreed" in obj
    if not (filtered and p is None) and (not isinstance(p, str) or not p.strip()):
        raise InputError('field "principles": expected a non-empty string (the model wrote none for this query?)', name, lineno)
    prov = obj.get("provenance")
    if prov is not None and not isinstance(prov, dict):
        raise InputError(f'field "provenance": expected an object, got {json_type(prov)}', name, lineno)
    entry = {"id": obj.get("id"), "prompt": obj.get("prompt"), "principles": p, "provenance": prov}
    for key in ("agreed", "runs"):
        if filtered and (not isinstance(obj.get(key), int) or isinstance(obj.get(key), bool) or obj[key] < 0):
            raise InputError(f'field "{key}": expected a count (0 or more), got {json.dumps(obj.get(key))}', name, lineno)
    if filtered:
        entry.update(agreed=obj.get("agreed"), runs=obj.get("runs"))
        entry["provenance"] = {**(prov or {}), "agreed": obj.get("agreed"), "runs": obj.get("runs"), "filtered_on": obj.get("filtered_on")}
    return entry


def read_principles(path: str) -> list[dict]:
    """Saved principles: a JSONL written by `grm principles --output` or `--filter` (or edited by hand), each
    line with "principles" and optionally "id"/"prompt"; or a plain-text file whose principles apply to
    every record. A filter line (it has "agreed") may hold null principles: no run agreed with the label."""
    name, text = read_text_input(path)
    if not looks_like_jsonl(text):
        if not text.strip():
            raise InputError("empty principles file: expected principles text or JSONL", name)
        return [{"principles": text.strip()}]
    entries = [principles_entry(obj, name, lineno) for lineno, obj in json_lines(text, name)]
    if not entries:
        raise InputError("no principles: the file is empty", name)
    return entries
