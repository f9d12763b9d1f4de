"""JSON over HTTP with one retry policy, for every client grm has (the OpenAI-compatible engine, the reward
client the RL hooks use). Standard library only: it runs inside trainers too.

Policy: statuses in `retry_on` (the caller says which mean "try again" for its server) and network failures
are retried up to `retries` times; the wait is the server's Retry-After when it gives one, else exponential
backoff, with 10% jitter, and never more than `max_wait` seconds. Everything else raises `ServerError` with
the status (None when no answer came) and the server's own error text: callers branch on the status and
word the message themselves, never parse ours.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
from typing import Callable

from grm_cli.errors import ModelError

TRANSIENT = (408, 409, 425, 429, 500, 502, 503, 504)  # what an inference server's answer may mean as "later"


class ServerError(ModelError):
    """A request that failed: `status` is the server's HTTP status, None when no answer came; `detail` is
    the server's error text (its JSON "error" field where it has one), `reason` why no answer came."""

    def __init__(self, message: str, status: int | None = None, *, detail: str = "", reason: str = "", not_json: bool = False):
        super().__init__(message)
        self.status, self.detail, self.reason, self.not_json = status, detail, reason, not_json


def request_json(url: str, body: dict | None = None, *, api_key: str | None = None, timeout: float = 300.0, retries: int = 5,
                 backoff: float = 0.5, retry_on: tuple[int, ...] = TRANSIENT, max_wait: float = 30.0,
                 on_retry: Callable[[], None] | None = None) -> dict:
    """POST `body` as JSON (GET without one) and return the decoded answer, under the policy above."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    for attempt in range(retries + 1):
        req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
        code = None
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                code = r.status
                return json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = _error_text(e)
            if e.code not in retry_on or attempt == retries:
                raise ServerError(f"{url}: the server answered {e.code}: {detail}", e.code, detail=detail) from None
            wait = retry_after(e.headers.get("Retry-After")) or backoff * 2 ** attempt
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:  # refused, reset, torn reads, TLS
            reason = str(getattr(e, "reason", e))
            if attempt == retries:
                raise ServerError(f"{url}: no answer after {retries + 1} tries ({reason})", reason=reason) from None
            wait = backoff * 2 ** attempt
        except ValueError:
            raise ServerError(f"{url}: the server's answer is not JSON", code, not_json=True) from None
        if on_retry is not None:
            on_retry()
        time.sleep(min(wait, max_wait) * (1 + 0.1 * random.random()))
    raise AssertionError("unreachable")


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the date form is not used by the servers grm talks to)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _error_text(e: urllib.error.HTTPError) -> str:
    raw = e.read().decode("utf-8", "replace")
    try:
        return str(json.loads(raw).get("error", raw))[:500]
    except (ValueError, AttributeError):
        return raw[:500] or str(e.reason)
