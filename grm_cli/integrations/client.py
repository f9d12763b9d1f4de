"""A client for a running `grm serve`, for the RL hooks (standard library only: it runs inside trainers).

Errors are told apart by HTTP status, never by message text: 503 and 429 are retried after the server's
Retry-After (bounded), a network failure is retried with backoff, and everything else raises `ServerError`
with the status and the server's own "error" message.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request

from grm_cli.errors import InputError, ModelError

RETRY_STATUS = (429, 503)


class ServerError(ModelError):
    """The server answered with an error (status set) or could not be reached (status None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RewardClient:
    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0, retries: int = 5, backoff: float = 0.5):
        if not url.startswith(("http://", "https://")):
            raise InputError(f"url {url!r}: expected http://HOST:PORT, the address `grm serve` prints")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("GRM_API_KEY") or None
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def post(self, path: str, body: dict) -> dict:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return json.loads(r.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                message = _error_message(e)
                if e.code not in RETRY_STATUS or attempt == self.retries:
                    raise self._failure(path, e.code, message) from None
                wait = _seconds(e.headers.get("Retry-After")) or self.backoff * 2 ** attempt
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                if attempt == self.retries:
                    raise ServerError(f"no answer from grm serve at {self.url} after {self.retries + 1} tries ({getattr(e, 'reason', e)}): is it running?") from None
                wait = self.backoff * 2 ** attempt
            except ValueError:
                raise ServerError(f"{self.url}{path}: the answer is not JSON: is this a grm serve?") from None
            time.sleep(min(wait, 30.0))
        raise AssertionError("unreachable")

    def _failure(self, path: str, status: int, message: str) -> ServerError:
        if status == 401:
            hint = "pass api_key= or set GRM_API_KEY to the server's key" if not self.api_key else "the key is not the server's"
            return ServerError(f"{self.url}{path}: 401 unauthorized ({hint})", status)
        if status == 404:
            return ServerError(f"{self.url}{path}: 404: is {self.url} a grm serve (and up to date)? ({message})", status)
        return ServerError(f"{self.url}{path}: the server answered {status}: {message}", status)

    def rewards(self, prompts: list, completions: list) -> tuple[list[float | None], tuple[int, int]]:
        """(reward per completion, None where no sample parsed; the template's score range)."""
        answer = self.post("/rewards", {"prompts": list(prompts), "completions": list(completions)})
        try:
            lo, hi = answer["score_range"]
            return list(answer["rewards"]), (int(lo), int(hi))
        except (KeyError, TypeError, ValueError):
            raise ServerError(f"{self.url}/rewards: an answer without rewards and score_range: {str(answer)[:200]}") from None


def _error_message(e: urllib.error.HTTPError) -> str:
    raw = e.read().decode("utf-8", "replace")
    try:
        return str(json.loads(raw).get("error", raw))[:500]
    except (ValueError, AttributeError):
        return raw[:500] or e.reason


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
