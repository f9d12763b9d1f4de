"""`GET /metrics` in the Prometheus text exposition format (version 0.0.4), written here: a handful of
counters, gauges and one histogram do not justify another dependency.

Routes are labelled by the route they matched, never the raw path (an arbitrary path from the network
would otherwise make a new time series per request); anything else is "other".
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value
        self.n += 1


class Metrics:
    def __init__(self, routes: tuple[str, ...]):
        self.routes = frozenset(routes)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}

    def route(self, path: str) -> str:
        return path if path in self.routes else "other"

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        route = self.route(path)
        with self._lock:
            key = (route, method, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault(route, _Histogram()).observe(seconds)

    def render(self, gauges: dict[str, tuple[str, str, float]]) -> str:
        """The exposition text; `gauges` adds name -> (type, help, value) read at scrape time."""
        out: list[str] = []
        with self._lock:
            out += ["# HELP grm_http_requests_total HTTP requests answered, by route, method and status.",
                    "# TYPE grm_http_requests_total counter"]
            for (route, method, status), n in sorted(self._requests.items()):
                out.append(f'grm_http_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            out += ["# HELP grm_http_request_duration_seconds Time from a request's arrival to the end of its answer.",
                    "# TYPE grm_http_request_duration_seconds histogram"]
            for route, h in sorted(self._latency.items()):
                cumulative = 0
                for bound, count in zip((*BUCKETS, float("inf")), h.counts):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'grm_http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {cumulative}')
                out.append(f'grm_http_request_duration_seconds_sum{{route="{route}"}} {h.total!r}')
                out.append(f'grm_http_request_duration_seconds_count{{route="{route}"}} {h.n}')
        for name, (kind, help_text, value) in gauges.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
        return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
