"""Running the app under uvicorn: the listening socket, and a shutdown that loses no request.

The socket is bound here, before uvicorn starts, so a port in use is a clear error and port 0's choice is
known for the "serving on" line. Its backlog is sized for bursts (`backlog_for`): a full backlog makes the
kernel refuse or reset connections, which a client sees as a network error instead of a 503 it can retry.

SIGTERM (or Ctrl-C) starts draining: new requests get 503 with Retry-After and `Connection: close`,
the requests in flight (queued ones included) finish, and once none is left uvicorn stops and the process
exits 0. Past `drain_timeout` seconds the requests still waiting are given up: each gets a JSON 503 with
Retry-After, the batch being scored stops at its chunk's end, and the engine is released only once the
worker has stopped (freeing llama.cpp under a running decode crashed the process). A second Ctrl-C stops at once. uvicorn's own handler
would stop accepting at the first signal (new clients then get "connection refused") and re-raise the
signal after shutdown (exit status -15); this one does neither.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import time

import uvicorn

from grm_cli.serve.app import ServeState
from grm_cli.serve.header_timeout import HeaderDeadlineProtocol


def backlog_for(queue_size: int) -> int:
    """Pending connections the kernel may hold: far above the queue, since every client that will get a 503
    must first be accepted (Linux caps this at net.core.somaxconn, 4096 on current kernels)."""
    return max(2048, 8 * queue_size)


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is this machine only (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket; OSError (with strerror) when the address cannot be used."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


GIVE_UP_GRACE = 3.0  # seconds for the requests given up at the drain timeout to get their 503 out


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServeState, drain_timeout: float, on_drain=None, on_give_up=None):
        super().__init__(config)
        self.state, self.drain_timeout, self.on_drain, self.on_give_up = state, drain_timeout, on_drain, on_give_up
        self.drain_started: float | None = None
        self.gave_up: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        if self.drain_started is not None:
            if sig == signal.SIGINT:  # a second Ctrl-C: stop now
                self.force_exit = self.should_exit = True
            return
        self.drain_started = time.monotonic()
        self.state.draining = True
        if self.on_drain is not None:
            self.on_drain(signal.Signals(sig).name, self.state.in_flight)

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.drain_started is None:
            return False
        if self.state.in_flight == 0:
            return True
        now = time.monotonic()
        if self.gave_up is None and now - self.drain_started > self.drain_timeout:
            # Past the drain timeout: the requests still waiting get a JSON 503 (not uvicorn's plain 500 when it
            # cancels them), then the server stops once they are answered or a short grace has passed.
            self.gave_up = now
            if self.on_give_up is not None:
                self.on_give_up()
        return self.gave_up is not None and now - self.gave_up > GIVE_UP_GRACE


def run(app, sock: socket.socket, state: ServeState, *, backlog: int, drain_timeout: float = 30.0, header_timeout: float = 30.0, verbose: bool = False,
        on_drain=None, on_give_up=None) -> None:
    """Serve `app` on `sock` (listening with `backlog`) until SIGTERM/SIGINT has drained it (see the module's docstring);
    `on_give_up` is called once the drain timeout has passed with requests still in flight. A client whose request
    head is not complete `header_timeout` seconds after it began is disconnected (header_timeout.py)."""
    config = uvicorn.Config(app, lifespan="off", log_level="info" if verbose else "warning", access_log=verbose, backlog=backlog,
                            timeout_graceful_shutdown=2, server_header=False, http=HeaderDeadlineProtocol.with_deadline(header_timeout))
    DrainingServer(config, state, drain_timeout, on_drain, on_give_up).run(sockets=[sock])
