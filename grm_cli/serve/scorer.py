"""The engine's one user inside `grm serve`: a worker thread that scores queued requests, several at a time.

llama.cpp contexts are not thread-safe, and batching is where the speed is, so every request goes through
one bounded queue and one thread. The worker takes every request that is waiting (up to
`max_batch_records` records) and scores all their records in one `score_records` call: concurrent
clients share the engine's batches. A full queue is `Busy` (the web layer answers 503 with Retry-After).

Waiting is asyncio-friendly: `score_async` parks the request on a future that the worker resolves with
`loop.call_soon_threadsafe`, so the event loop never blocks and a hundred waiting clients cost no threads.
No web framework is imported here.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record
from grm_cli.errors import GrmError
from grm_cli.scoring.job import ScoreJob
from grm_cli.scoring.pipeline import score_records
from grm_cli.scoring.results import ScoreResult
from grm_cli.scoring.settings import ScoreSettings


class Busy(Exception):
    """The queue is full: the client should retry later."""


class ShuttingDown(Busy):
    """The server stopped before this request's records were scored: retry on another replica or later."""


class Expired(TimeoutError):
    """The request waited past the server's --request-timeout."""


@dataclass
class Job:
    records: list[Record]
    results: list[ScoreResult] = field(default_factory=list)
    error: Exception | None = None  # a GrmError from scoring, or ShuttingDown
    cancelled: bool = False  # the client stopped waiting: do not spend the engine on it
    done: threading.Event = field(default_factory=threading.Event)
    notify: Callable[[], None] | None = None  # called from the worker thread once the job is done

    def finish(self) -> None:
        self.done.set()
        if self.notify is not None:
            self.notify()


@dataclass
class Throughput:
    """What the worker did, for /metrics: monotonic counters plus the rate of the last batch."""

    records: int = 0
    samples: int = 0
    generated_tokens: int = 0
    busy_seconds: float = 0.0
    last_tokens_per_second: float = 0.0


class Scorer:
    def __init__(self, engine, template: Template, settings: ScoreSettings, *, queue_size: int = 32, max_batch_records: int = 64, chunk: int = 8, meta_rm=None):
        self.engine = engine
        self.meta_rm = meta_rm
        self.template = template
        self.settings = settings
        self.chunk = chunk
        self.max_batch_records = max_batch_records
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self.stats = Throughput()
        self.active = 0  # records being scored right now
        self._stopping = False
        self._current: list[Job] = []  # the batch being scored
        self._thread = threading.Thread(target=self._run, name="grm-scorer", daemon=True)
        self._thread.start()

    @property
    def served(self) -> int:
        return self.stats.records

    def prepare(self, records: list[Record], on_long: str) -> list[Record]:
        """Check the records (response count, context fit) before they join a batch, so one client's bad
        record is that client's 400 and never fails the batch it would have joined. Tokenizes: run it in a
        worker thread, not on the event loop."""
        return ScoreJob(self.template, self.settings, on_long=on_long).prepare(records, self.engine)

    def enqueue(self, records: list[Record], notify: Callable[[], None] | None = None) -> Job:
        if self._stopping:
            raise ShuttingDown("the server is shutting down: retry on another replica or after a restart")
        job = Job(records, notify=notify)
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise Busy() from None
        return job

    async def score_async(self, records: list[Record], timeout: float, *, on_long: str = "error") -> list[ScoreResult]:
        """Prepare, queue and await the records' results. Raises Busy (the queue is full), Expired (after
        `timeout` seconds; records not yet started are then skipped), or the scoring's GrmError."""
        if self.queue.full():  # answer 503 before tokenizing anything
            raise Busy()
        records = await asyncio.to_thread(self.prepare, records, on_long)
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # the loop is closed: the server is gone, nobody waits
                pass

        job = self.enqueue(records, notify)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            job.cancelled = True
            raise Expired("scoring took longer than the server's --request-timeout") from None
        if job.error:
            raise job.error
        return job.results

    def abandon(self) -> None:
        """Shutting down: every queued request is answered ShuttingDown now, and the batch being scored stops
        after its current chunk (its unfinished requests get ShuttingDown too)."""
        self._stopping = True
        waiting = list(self._current)  # answered now; the worker ends its chunk and drops their results
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                waiting.append(job)
        for job in waiting:
            if not job.done.is_set():
                job.error = ShuttingDown("the server is shutting down: retry on another replica or after a restart")
                job.finish()

    def stop(self) -> None:
        """Stop the worker and wait for it: llama.cpp's memory must not be freed (at exit) while it decodes.
        It stops after the chunk it is in, so this waits one chunk at most."""
        self.abandon()
        try:
            self.queue.put_nowait(None)  # wake a worker waiting on an empty queue
        except queue.Full:
            pass
        self._thread.join()

    def _take(self) -> list[Job] | None:
        first = self.queue.get()
        if first is None:
            return None
        jobs = [first]
        count = len(first.records)
        while count < self.max_batch_records:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._stopping = True
                break
            jobs.append(job)
            count += len(job.records)
        for j in jobs:
            if j.cancelled:
                j.finish()
        return [j for j in jobs if not j.cancelled]

    def _run(self) -> None:
        while not self._stopping:
            jobs = self._take()
            if jobs is None:
                return
            if not jobs:
                continue
            self._current = jobs
            try:
                self._score(jobs)
                if len(jobs) > 1 and any(j.error for j in jobs) and not self._stopping:  # one job broke the batch: score each alone
                    for j in jobs:
                        j.error = None
                        self._score([j])
            finally:
                self.active = 0
                self._current = []
                for j in jobs:
                    j.finish()

    def _score(self, jobs: list[Job]) -> None:
        records = [r for j in jobs for r in j.records]
        self.active = len(records)
        tokens_before = self._generated()
        started = time.perf_counter()
        try:
            results = []
            for result in score_records(records, self.engine, self.template, self.settings, chunk=self.chunk, meta_rm=self.meta_rm):
                results.append(result)
                if self._stopping and len(results) % self.chunk == 0 and len(results) < len(records):
                    break  # shutting down: stop at a chunk's end, never inside llama.cpp
        except GrmError as e:
            for j in jobs:
                j.error = e
            return
        except Exception as e:  # the server must survive whatever one batch does
            for j in jobs:
                j.error = GrmError(f"scoring failed: {type(e).__name__}: {e}")
            return
        finally:
            seconds = time.perf_counter() - started
            tokens = self._generated() - tokens_before
            self.stats.busy_seconds += seconds
            self.stats.generated_tokens += tokens
            if tokens:
                self.stats.last_tokens_per_second = tokens / seconds if seconds > 0 else 0.0
        at = 0
        for j in jobs:
            j.results = results[at: at + len(j.records)]
            if len(j.results) < len(j.records):
                j.error = ShuttingDown("the server shut down before this request was scored: retry on another replica or after a restart")
            at += len(j.records)
        self.stats.records += len(results)
        self.stats.samples += sum(len(r.samples) for r in results)

    def _generated(self) -> int:
        stats = getattr(self.engine, "stats", None)
        return int(getattr(stats, "generated_tokens", 0) or 0)
