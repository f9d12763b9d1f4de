"""Reading a request body as JSON within a size limit, while it arrives (chunked bodies too).

The limit is checked on every chunk, so a body is never held past `limit` bytes. An oversized body is
still read to its end (and thrown away, up to `drain_max` bytes) before the 413 goes out: closing a
socket whose client is still sending makes the kernel reset the connection, and the client then sees
"connection reset" instead of the 413. A client that asked `Expect: 100-continue` has sent nothing yet
and gets its 413 at once. Nesting deeper than `grm_cli.io.jsonl.MAX_JSON_DEPTH` is a 400, never a
RecursionError.
"""

from __future__ import annotations

import json

from grm_cli.io.jsonl import loads_bounded

DRAIN_MAX = 64 * 1024 * 1024


class Problem(Exception):
    """An HTTP error answer: status, a message for the JSON body, extra headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


async def read_json(request, limit: int, *, drain_max: int = DRAIN_MAX) -> object:
    """The decoded JSON body of a Starlette request, or Problem(400/411/413)."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared is not None and not declared.strip().isdigit():
        raise Problem(400, f"Content-Length {declared!r} is not a number", {"Connection": "close"})
    too_large = Problem(413, f"the body is over {limit} bytes, the server's --max-body-mb; send fewer records per request", {"Connection": "close"})
    if declared is not None and int(declared) > limit:
        too_large.message = f"the body is {int(declared)} bytes; at most {limit} (the server's --max-body-mb): send fewer records per request"
        if "100-continue" in request.headers.get("expect", "").lower() or int(declared) > drain_max:
            raise too_large  # nothing sent yet, or too much to read: answer now
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > drain_max:
                raise too_large
            if size <= limit:
                chunks.append(chunk)
    except ClientDisconnect:
        raise Problem(400, "the client closed the connection before the body ended") from None
    if size > limit:
        raise too_large
    raw = b"".join(chunks)
    if not raw.strip():
        raise Problem(400, "the body is empty: expected JSON")
    try:
        return loads_bounded(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise Problem(400, f"the body is not UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise Problem(400, f"the body is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except ValueError as e:  # JSONTooDeep
        raise Problem(400, f"the body is not JSON grm accepts: {e}") from None
