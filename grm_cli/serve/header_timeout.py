"""A deadline for a request's headers: a client that opens a socket and sends nothing, or dribbles its
headers a byte at a time, is disconnected after `header_timeout` seconds instead of holding the socket
(and a file descriptor) forever. uvicorn has no such limit of its own: its keep-alive timer starts only
after a first response, and any byte received cancels it.

The clock runs while the connection waits for a complete request head (h11's IDLE state for the client):
from the moment the connection opens, and from the first byte of each later request. Once the head is in,
the request may take as long as scoring takes (--request-timeout governs that)."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with the header deadline; `with_deadline` makes the class uvicorn instantiates."""

    header_timeout: float = 30.0

    @classmethod
    def with_deadline(cls, seconds: float) -> type["HeaderDeadlineProtocol"]:
        return type("HeaderDeadlineProtocol", (cls,), {"header_timeout": float(seconds)})

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.waiting_since: float | None = self.loop.time()
        self.deadline_timer = self.loop.call_later(self.header_timeout, self.check_deadline)

    def data_received(self, data: bytes) -> None:
        if self.waiting_since is None and self.conn.their_state is h11.IDLE:
            self.waiting_since = self.loop.time()  # the first byte of the next request's head
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self.waiting_since = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline_timer.cancel()
        super().connection_lost(exc)

    def check_deadline(self) -> None:
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.waiting_since is not None and self.conn.their_state is h11.IDLE and now - self.waiting_since >= self.header_timeout:
            self.transport.close()  # no response: the client never finished asking
            return
        left = self.header_timeout - (now - self.waiting_since) if self.waiting_since is not None else self.header_timeout
        self.deadline_timer = self.loop.call_later(max(0.05, left), self.check_deadline)
