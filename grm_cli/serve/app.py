"""`grm serve`'s ASGI application (FastAPI): the routes, Bearer authentication, JSON errors everywhere.

Routes (the OpenAPI schema is at /openapi.json, the browsable one at /docs):
  GET  /health      {"status": "ok", "model", "template", "k", "queue", "served", "auth"}
  POST /score       records as in the JSONL files (one, a list, or {"records": [...]}) -> {"results": [...]},
                    the result objects `grm score --output` writes
  POST /get_reward  OpenRLHF's remote reward model (see `contracts`)
  POST /rewards     {"prompts", "completions"} -> {"rewards", "unparsed"}: the TRL and verl hooks' route
  GET  /metrics     Prometheus text

With an API key, /score, /get_reward, /rewards and /metrics need `Authorization: Bearer KEY` (compared in
constant time); /health, /docs and /openapi.json stay open for probes and readers. Every answer, errors
included (404, 405, 413, 500), is a JSON object with an "error" message, except /metrics and /docs.
The outer `_Front` middleware times and counts every request, and answers 503 while the server drains.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from grm_cli.errors import GrmError, InputError
from grm_cli.serve import schema
from grm_cli.serve.body import Problem, read_json
from grm_cli.serve.contracts import openrlhf_answer, parse_completions, parse_openrlhf, parse_records, votes_per_completion
from grm_cli.serve.metrics import CONTENT_TYPE, Metrics
from grm_cli.serve.rewards import group_completions, rewards_from_results
from grm_cli.serve.scorer import Busy, Expired, Scorer, ShuttingDown

ROUTES = ("/health", "/score", "/get_reward", "/rewards", "/metrics", "/docs", "/openapi.json")
ROUTE_LIST = "GET /health, POST /score, POST /get_reward, POST /rewards, GET /metrics, GET /docs"


@dataclass
class ServeOptions:
    api_key: str | None = None
    max_body: int = 4 * 1024 * 1024
    request_timeout: float = 600.0
    unparsed_reward: float | None = None


@dataclass
class ServeState:
    """What the front middleware and the shutdown logic share."""

    metrics: Metrics = field(default_factory=lambda: Metrics(ROUTES))
    in_flight: int = 0
    draining: bool = False


def json_response(status: int, payload: object, headers: dict | None = None) -> Response:
    # ensure_ascii=False keeps texts readable; NaN would be written as the old server wrote it
    data = (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")
    return Response(data, status_code=status, headers=headers, media_type="application/json")


class _Front:
    """Outermost ASGI layer: one spelling per route (a trailing slash is dropped), 503 while draining,
    and the request counter and latency histogram for every answer."""

    def __init__(self, app, state: ServeState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        started = time.perf_counter()
        status = 500

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if self.state.draining and scope["path"] != "/metrics":
            response = json_response(503, {"error": "the server is shutting down: retry on another replica or after a restart"},
                                     {"Retry-After": "5", "Connection": "close"})
            await response(scope, receive, watch)
        else:
            self.state.in_flight += 1
            try:
                await self.app(scope, receive, watch)
            finally:
                self.state.in_flight -= 1
        self.state.metrics.observe(scope["method"], scope["path"], status, time.perf_counter() - started)


def build_app(scorer: Scorer, options: ServeOptions, state: ServeState | None = None):
    """The ASGI app over one `Scorer`; `state` is shared with the runner (draining, requests in flight)."""
    state = state or ServeState()
    app = FastAPI(title="grm serve", version="1", redirect_slashes=False,
                  description="A generative reward model over HTTP: records in, principles, critiques and voted scores out "
                              "(DeepSeek's SPCT). With --api-key, the scoring routes and /metrics need `Authorization: Bearer KEY`.")
    components: dict = {}
    bearer = HTTPBearer(auto_error=False, description="The server's --api-key (or GRM_API_KEY).")
    key = options.api_key.encode("utf-8") if options.api_key else None

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if key is None:
            return
        given = credentials.credentials.encode("utf-8") if credentials is not None else b""
        if not secrets.compare_digest(given, key):
            raise Problem(401, "missing or wrong API key: send `Authorization: Bearer KEY` with the server's --api-key",
                          {"WWW-Authenticate": "Bearer"})

    guarded = {"dependencies": [Depends(authorized)], "responses": schema.ERRORS}

    @app.get("/health", response_model=schema.Health)
    async def health():
        """Liveness and what is loaded; open without the API key."""
        return json_response(200, {"status": "ok", "model": scorer.engine.name, "template": scorer.template.name, "k": scorer.settings.k,
                                   "queue": scorer.queue.qsize(), "served": scorer.served, "auth": key is not None})

    app.add_api_route("/", health, methods=["GET"], include_in_schema=False)

    @app.post("/score", response_model=schema.ScoreOut, openapi_extra=schema.openapi_body(schema.ScoreIn, components), **guarded)
    async def score(request: Request):
        """Score records as `grm score` does; the answer holds the result objects `--output` writes."""
        records = parse_records(await read_json(request, options.max_body))
        results = await scorer.score_async(records, options.request_timeout)
        return json_response(200, {"results": [r.to_json() for r in results]})

    async def completion_rewards(prompts, completions):
        records, slots = group_completions(prompts, completions, scorer.template)
        results = await scorer.score_async(records, options.request_timeout, on_long="truncate") if records else []  # a rollout is never refused for length
        rewards = rewards_from_results(results, slots, len(completions), empty=float(scorer.template.score_min))
        return rewards, votes_per_completion(results, slots)

    @app.post("/get_reward", response_model=schema.GetRewardOut, openapi_extra=schema.openapi_body(schema.GetRewardIn, components), **guarded)
    async def get_reward(request: Request):
        """OpenRLHF's remote reward model: completions of one prompt are judged together in one record."""
        prompts, responses = parse_openrlhf(await read_json(request, options.max_body))
        rewards, votes = await completion_rewards(prompts, responses)
        return json_response(200, openrlhf_answer(rewards, votes, (scorer.template.score_min, scorer.template.score_max), options.unparsed_reward))

    @app.post("/rewards", response_model=schema.RewardsOut, openapi_extra=schema.openapi_body(schema.RewardsIn, components), **guarded)
    async def rewards(request: Request):
        """One reward per completion (null where no sample parsed): what `grm_cli.integrations` calls."""
        prompts, completions = parse_completions(await read_json(request, options.max_body))
        got, _ = await completion_rewards(prompts, completions)
        return json_response(200, {"rewards": got, "unparsed": [i for i, r in enumerate(got) if r is None],
                                   "score_range": [scorer.template.score_min, scorer.template.score_max]})

    @app.get("/metrics", response_class=Response, **guarded)
    async def metrics():
        """Prometheus text: requests by route and status, latency, queue depth, samples and tokens."""
        s = scorer.stats
        gauges = {
            "grm_queue_depth": ("gauge", "Requests waiting for the engine.", scorer.queue.qsize()),
            "grm_queue_capacity": ("gauge", "Requests that may wait (--queue-size); more get 503.", scorer.queue.maxsize),
            "grm_requests_in_flight": ("gauge", "HTTP requests being handled.", state.in_flight),
            "grm_records_active": ("gauge", "Records the engine is scoring now.", scorer.active),
            "grm_records_scored_total": ("counter", "Records scored.", s.records),
            "grm_samples_total": ("counter", "Judgment samples in the scored records.", s.samples),
            "grm_generated_tokens_total": ("counter", "Tokens the engine generated.", s.generated_tokens),
            "grm_scoring_seconds_total": ("counter", "Seconds the engine spent scoring.", round(s.busy_seconds, 6)),
            "grm_generated_tokens_per_second": ("gauge", "Generation speed over the last scoring batch.", round(s.last_tokens_per_second, 3)),
            "grm_draining": ("gauge", "1 while the server finishes its requests before exiting.", int(state.draining)),
        }
        return Response(state.metrics.render(gauges), media_type=CONTENT_TYPE)

    _errors(app, scorer)

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return _Front(app, state)


def _errors(app: FastAPI, scorer: Scorer) -> None:
    """Every failure as a JSON {"error": ...} with the right status."""

    async def problem(request, exc: Problem):
        return json_response(exc.status, {"error": exc.message}, exc.headers)

    async def http_error(request, exc: StarletteHTTPException):
        path = request.url.path
        if exc.status_code == 404:
            message = f"no route {path}: {ROUTE_LIST}"
        elif exc.status_code == 405:
            message = f"{request.method} {path}: this route takes {(exc.headers or {}).get('Allow', 'another method')}"
        else:
            message = str(exc.detail)
        return json_response(exc.status_code, {"error": message}, exc.headers)

    async def bad_input(request, exc: InputError):
        return json_response(400, {"error": str(exc)})

    async def busy(request, exc: Busy):
        if isinstance(exc, ShuttingDown):
            return json_response(503, {"error": str(exc)}, {"Retry-After": "5", "Connection": "close"})
        return json_response(503, {"error": f"busy: {scorer.queue.maxsize} requests are waiting; retry later"}, {"Retry-After": "1"})

    async def expired(request, exc: Expired):
        return json_response(504, {"error": str(exc)})

    async def failed(request, exc: GrmError):
        return json_response(500, {"error": str(exc)})

    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        return json_response(400, {"error": f"field {'.'.join(map(str, first.get('loc', ())))}: {first.get('msg', 'invalid')}"})

    async def crashed(request, exc: Exception):
        return json_response(500, {"error": f"internal error ({type(exc).__name__}): please report it"})

    for cls, handler in ((Problem, problem), (StarletteHTTPException, http_error), (InputError, bad_input), (Busy, busy),
                         (Expired, expired), (GrmError, failed), (RequestValidationError, invalid), (Exception, crashed)):
        app.add_exception_handler(cls, handler)
