"""A client for a running `grm serve`, for the RL hooks (standard library only: it runs inside trainers).

Errors are told apart by HTTP status, never by message text: 503 and 429 are retried after the server's
Retry-After (bounded), a network failure is retried with backoff, and everything else raises `ServerError`
with the status and the server's own "error" message.
"""

from __future__ import annotations

import os

from grm_cli.errors import InputError
from grm_cli.io.http import ServerError, request_json

RETRY_STATUS = (429, 503)  # a grm serve's "later" (busy, draining); its 500 is a real error, not retried


class RewardClient:
    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0, retries: int = 5, backoff: float = 0.5):
        if not url.startswith(("http://", "https://")):
            raise InputError(f"url {url!r}: expected http://HOST:PORT, the address `grm serve` prints")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("GRM_API_KEY") or None
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def post(self, path: str, body: dict) -> dict:
        try:
            return request_json(self.url + path, body, api_key=self.api_key, timeout=self.timeout, retries=self.retries, backoff=self.backoff,
                                retry_on=RETRY_STATUS)
        except ServerError as e:
            if e.status is not None:
                raise self._failure(path, e.status, e.detail) from None
            if e.not_json:
                raise ServerError(f"{self.url}{path}: the answer is not JSON: is this a grm serve?") from None
            raise ServerError(f"no answer from grm serve at {self.url} after {self.retries + 1} tries ({e.reason}): is it running?") from None

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
