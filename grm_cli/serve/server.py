"""`grm serve`: an HTTP reward server over one loaded GRM, for RL trainers and evaluation fleets.

One worker thread owns the engine. Requests wait in a bounded queue; the worker takes every request that
is waiting and scores all their records in one call, so concurrent clients share the engine's batches.
A full queue answers 503 (with Retry-After), an oversized body 413, bad JSON or a bad record 400 with the
field that is wrong; none of them stops the server.

Routes:
  GET  /health      {"status": "ok", "model", "template", "k", "queue", "served"}
  POST /score       records as in the JSONL files (one object, a list, or {"records": [...]}) -> {"results": [...]}
                    with the same result objects `grm score --output` writes
  POST /get_reward  OpenRLHF's remote RM: {"query": [prompt+response, ...], "prompts": [prompt, ...]} ->
                    {"rewards": [...]}; responses to the same prompt are judged together in one record
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from grm_cli.core.prompt import Template
from grm_cli.core.records import Record, record_from_dict
from grm_cli.errors import GrmError, InputError
from grm_cli.io.jsonl import loads_bounded
from grm_cli.scoring.pipeline import ScoreResult, ScoreSettings, prepare_records, score_records
from grm_cli.serve.rewards import group_completions, rewards_from_results

MAX_BODY = 4 * 1024 * 1024
MAX_RECORDS = 256


_NO_BODY = object()  # the reply was already sent (an error): distinct from a body that is JSON null


class Busy(Exception):
    """The queue is full: the client should retry later."""


@dataclass
class Job:
    records: list[Record]
    done: threading.Event = field(default_factory=threading.Event)
    results: list[ScoreResult] = field(default_factory=list)
    error: GrmError | None = None
    cancelled: bool = False  # the client stopped waiting: do not spend the engine on it


class Scorer:
    """The engine's one user: scores queued jobs, several at a time."""

    def __init__(self, engine, template: Template, settings: ScoreSettings, *, queue_size: int = 32, max_batch_records: int = 64, chunk: int = 8, meta_rm=None):
        self.engine = engine
        self.meta_rm = meta_rm
        self.template = template
        self.settings = settings
        self.chunk = chunk
        self.max_batch_records = max_batch_records
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self.served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grm-scorer", daemon=True)
        self._thread.start()

    def submit(self, records: list[Record], timeout: float | None = None, *, on_long: str = "error") -> Job:
        """Check the records (response count, context fit) in the caller's thread, so one client's bad
        record is that client's 400 and never fails the batch it would have joined; then wait."""
        records = prepare_records(records, self.engine, self.template, self.settings, on_long=on_long)
        job = Job(records)
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise Busy() from None
        if not job.done.wait(timeout):
            job.cancelled = True
            raise TimeoutError("scoring took longer than the server's --request-timeout")
        if job.error:
            raise job.error
        return job

    def stop(self) -> None:
        self._stop.set()
        try:
            self.queue.put_nowait(None)  # wake the worker
        except queue.Full:
            pass
        self._thread.join(timeout=5)

    def _take(self) -> list[Job]:
        first = self.queue.get()
        if first is None:
            return []
        jobs = [first]
        count = len(jobs[0].records)
        while count < self.max_batch_records:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                break
            jobs.append(job)
            count += len(job.records)
        return [j for j in jobs if not j.cancelled]

    def _run(self) -> None:
        while not self._stop.is_set():
            jobs = self._take()
            if not jobs:
                continue
            try:
                self._score(jobs)
                if len(jobs) > 1 and any(j.error for j in jobs):  # one job broke the batch: score each alone
                    for j in jobs:
                        j.error = None
                        self._score([j])
            finally:
                for j in jobs:
                    j.done.set()

    def _score(self, jobs: list[Job]) -> None:
        records = [r for j in jobs for r in j.records]
        try:
            results = list(score_records(records, self.engine, self.template, self.settings, chunk=self.chunk, meta_rm=self.meta_rm))
        except GrmError as e:
            for j in jobs:
                j.error = e
            return
        except Exception as e:  # the server must survive whatever one batch does
            for j in jobs:
                j.error = GrmError(f"scoring failed: {type(e).__name__}: {e}")
            return
        at = 0
        for j in jobs:
            j.results = results[at: at + len(j.records)]
            at += len(j.records)
        self.served += len(records)


def parse_records(body: object) -> list[Record]:
    """/score's body: one record, a list of records, or {"records": [...]}; errors name the record's index."""
    if isinstance(body, dict) and "records" in body:
        body = body["records"]
    items = body if isinstance(body, list) else [body]
    if not items or body is None:
        raise InputError("no records: expected a record object, a list of them, or {\"records\": [...]}", "request")
    if len(items) > MAX_RECORDS:
        raise InputError(f"{len(items)} records in one request: at most {MAX_RECORDS}", "request")
    return [record_from_dict(obj, "request record", i) for i, obj in enumerate(items)]


def parse_openrlhf(body: object) -> tuple[list[str], list[str]]:
    """OpenRLHF's remote RM request: "query" (prompt + response texts) and "prompts" (their prompts)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), list):
        raise InputError('expected {"query": [prompt+response, ...], "prompts": [prompt, ...]}', "request")
    queries = body["query"]
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or len(prompts) != len(queries):
        raise InputError('field "prompts": expected one prompt per query (OpenRLHF sends both), to split each query into prompt and response', "request")
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts)):
        if not isinstance(q, str) or not isinstance(p, str):
            raise InputError(f"query {i}: expected strings in \"query\" and \"prompts\"", "request")
        if not q.startswith(p):
            raise InputError(f"query {i}: does not start with its prompt, so the response cannot be told apart", "request")
        responses.append(q[len(p):])
    if len(queries) > MAX_RECORDS * 16:
        raise InputError(f"{len(queries)} queries in one request: at most {MAX_RECORDS * 16}", "request")
    return [str(p) for p in prompts], responses


class _Handler(BaseHTTPRequestHandler):
    server: "RewardServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # quiet: the CLI prints its own lines
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/score", "/get_reward"):
            self._send(405, {"error": f"{self.path} takes POST with a JSON body"}, {"Allow": "POST"})
            return
        if self.path.rstrip("/") in ("/health", ""):
            s = self.server.scorer
            self._send(200, {"status": "ok", "model": s.engine.name, "template": s.template.name, "k": s.settings.k,
                             "queue": s.queue.qsize(), "served": s.served})
        else:
            self._send(404, {"error": f"no route {self.path}: GET /health, POST /score, POST /get_reward"})

    def _body(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # an unread body must not be taken for the next request
            self._send(411, {"error": "a Content-Length header is required"})
            return _NO_BODY
        n = int(length)
        if n > self.server.max_body:
            self.close_connection = True
            self._send(413, {"error": f"the body is {n} bytes; at most {self.server.max_body}"})
            return _NO_BODY
        raw = self.rfile.read(n)
        try:
            return loads_bounded(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:  # JSONTooDeep is a ValueError: 400, not a dropped connection
            self._send(400, {"error": f"the body is not JSON: {e}"})
            return _NO_BODY

    def do_POST(self) -> None:
        route = self.path.rstrip("/")
        if route not in ("/score", "/get_reward"):
            self.close_connection = True  # its body stays unread
            self._send(404, {"error": f"no route {self.path}: POST /score or POST /get_reward"})
            return
        body = self._body()
        if body is _NO_BODY:
            return
        scorer = self.server.scorer
        try:
            if route == "/score":
                job = scorer.submit(parse_records(body), timeout=self.server.request_timeout)
                self._send(200, {"results": [r.to_json() for r in job.results]})
            else:
                prompts, responses = parse_openrlhf(body)
                records, slots = group_completions(prompts, responses, scorer.template)
                job = scorer.submit(records, timeout=self.server.request_timeout, on_long="truncate")  # a rollout is never refused for length
                rewards = rewards_from_results(job.results, slots, len(responses), empty=float(scorer.template.score_min))
                unparsed = [i for i, r in enumerate(rewards) if r is None]
                if self.server.unparsed_reward is not None:
                    rewards = [self.server.unparsed_reward if r is None else r for r in rewards]
                self._send(200, {"rewards": rewards, "scores": rewards, "unparsed": unparsed})
        except Busy:
            self._send(503, {"error": f"busy: {scorer.queue.maxsize} requests are waiting; retry later"}, {"Retry-After": "1"})
        except InputError as e:
            self._send(400, {"error": str(e)})
        except TimeoutError as e:
            self._send(504, {"error": str(e)})
        except GrmError as e:
            self._send(500, {"error": str(e)})


class RewardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, scorer: Scorer, host: str = "127.0.0.1", port: int = 8000, *, max_body: int = MAX_BODY, request_timeout: float = 600.0,
                 unparsed_reward: float | None = None, verbose: bool = False):
        self.scorer = scorer
        self.unparsed_reward = unparsed_reward
        self.max_body = max_body
        self.request_timeout = request_timeout
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    def close_all(self) -> None:
        """After serve_forever returned (or in another thread: shutdown() first)."""
        self.server_close()
        self.scorer.stop()

