"""The report as one HTML file: the data as inert JSON, the page's own script and style inline, and a
Content-Security-Policy that lets nothing else load or run.

Results hold arbitrary text (prompts, responses, critiques: possibly hostile). Three walls keep it text: the
data sits in `<script type="application/json">` blocks that no data can close (every `<` is written
`\\u003c`), the script inserts it with textContent only, and the policy admits only the two inline blocks
whose hashes it names, with no network at all (`default-src 'none'`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib.resources import files
from typing import Any

from grm_cli.report.model import finite

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def asset(name: str) -> str:
    """The page's own script or style, shipped in the package (grm_cli/report/assets)."""
    return files("grm_cli.report").joinpath("assets", name).read_text(encoding="utf-8")


def data_json(data: Any) -> str:
    """The data as JSON that is safe inside a script block: no `<` at all (so no `</script` and no `<!--`),
    and lone surrogates (JSON allows them, UTF-8 cannot carry them) written as escapes."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # a NaN somewhere: JSON.parse would refuse the literal
        text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c")
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


CHUNK_CHARS = 8 << 20  # the most characters of one records block: a big run stays far below a browser's longest string


def chunks(items: list) -> list[str]:
    """JSON arrays of the items, each at most CHUNK_CHARS long (unless one item alone is longer)."""
    out, part, size = [], [], 0
    for item in items:
        text = data_json(item)
        if part and size + len(text) > CHUNK_CHARS:
            out.append("[" + ",".join(part) + "]")
            part, size = [], 0
        part.append(text)
        size += len(text) + 1
    if part:
        out.append("[" + ",".join(part) + "]")
    return out


def data_blocks(data: dict) -> str:
    """The data as inert script blocks: the frame (titles, runs, summaries) in one, the records and inputs in
    blocks of at most CHUNK_CHARS, so that no single string of a big run reaches the browser's limit (about
    half a gigabyte in V8) and each block is parsed on its own."""
    frame = {**data, "runs": [{**run, "records": []} for run in data["runs"]], "inputs": []}
    blocks = [f'<script type="application/json" id="grm-data">{data_json(frame)}</script>']
    for i, run in enumerate(data["runs"]):
        blocks += [f'<script type="application/json" class="grm-records" data-run="{i}">{c}</script>' for c in chunks(run["records"])]
    blocks += [f'<script type="application/json" class="grm-inputs">{c}</script>' for c in chunks(data["inputs"])]
    return "\n".join(blocks)


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def policy(script: str, style: str) -> str:
    """Nothing from the network, no plugin, no form, no base URL; only this page's own script and style run."""
    return f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; img-src data:; base-uri 'none'; form-action 'none'"


def render_page(data: dict, title: str) -> str:
    script, style = asset("view.js"), asset("view.css")
    for name, text, closer in (("view.js", script, "</script"), ("view.css", style, "</style")):
        for bad in (closer, "<!--"):
            if bad in text.lower():  # the assets are ours: a slip here would break the page, not open it
                raise ValueError(f"{name} holds {bad}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy(script, style)}\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<style>{style}</style>\n</head>\n<body>\n"
        "<noscript>This report needs JavaScript; its data is the JSON block below.</noscript>\n"
        "<div id=\"app\"><p class=\"loading\">Loading the report…</p></div>\n"
        f"{data_blocks(data)}\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )
