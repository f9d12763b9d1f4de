"""`grm serve`: the HTTP reward server over one loaded GRM."""

from __future__ import annotations

from typing import Optional

import typer

from grm_cli.cli.app import app
from grm_cli.cli.console import say
from grm_cli.cli.options import engine_flags, load_engine, score_flags
from grm_cli.cli.runs import engine_for, engine_parts, open_meta
from grm_cli.engine.factory import EngineOptions
from grm_cli.errors import InputError
from grm_cli.scoring.options import ScoreOptions


@app.command()
@engine_flags("lora", "memory", "batching")
@score_flags("sampling", "judge", "voting", leave_out=("budget", "score_mode"))
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only; 0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", help="Port (0 picks a free one; the line on stderr says which)."),
    queue_size: int = typer.Option(32, "--queue-size", help="Requests that may wait; more get 503 with Retry-After."),
    max_body_mb: float = typer.Option(4.0, "--max-body-mb", help="Largest request body in MB (larger: 413)."),
    request_timeout: float = typer.Option(600.0, "--request-timeout", help="Seconds a request may wait for its scores (then 504; its records are not scored)."),
    unparsed_reward: Optional[float] = typer.Option(None, "--unparsed-reward", help="/get_reward: the reward for a completion no sample could score (default null; OpenRLHF needs a number, e.g. 1). Such completions are listed in \"unparsed\" either way."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="GRM_API_KEY", show_default=False, help="Require `Authorization: Bearer KEY` on /score, /get_reward, /rewards and /metrics (401 otherwise). Prefer the GRM_API_KEY environment variable: a flag shows in `ps`."),
    shutdown_timeout: float = typer.Option(30.0, "--shutdown-timeout", help="On SIGTERM or Ctrl-C: seconds to finish the requests in flight (new ones get 503) before exiting."),
    header_timeout: float = typer.Option(30.0, "--header-timeout", help="Seconds a client may take to send a request's headers (from connecting, or from the request's first byte); slower ones are disconnected."),
    opts: ScoreOptions = ScoreOptions(),
    eng: EngineOptions = EngineOptions(),
) -> None:
    """An HTTP reward server over the loaded GRM: POST /score (records in, the same results as `grm score
    --output` out), POST /get_reward (OpenRLHF's remote RM), POST /rewards (the TRL and verl hooks),
    GET /health, GET /metrics (Prometheus), GET /docs (OpenAPI). Concurrent requests are scored together
    in the engine's batches. Needs the server extra: pip install 'grm-cli[server]'.

    Examples:

      grm serve --model grm.gguf -k 4 --port 8000

      grm serve --model grm.gguf -k 16 --adaptive stat

      grm serve --model skywork-critic-8b -k 2

      GRM_API_KEY=$(openssl rand -hex 16) grm serve --model grm.gguf --host 0.0.0.0

      curl -s localhost:8000/score -d '{"prompt": "2+2?", "responses": ["4", "5"]}' | jq '.results[0].scores'

      python -m openrlhf.cli.train_ppo_ray ... --remote_rm_url http://127.0.0.1:8000/get_reward
    """
    try:
        from grm_cli.serve.app import ServeOptions, ServeState, build_app
        from grm_cli.serve.runner import backlog_for, bind, is_loopback, run
        from grm_cli.serve.scorer import Scorer
    except ImportError as e:
        raise InputError(f"grm serve needs the server extra ({e.name} is missing): pip install 'grm-cli[server]'") from None

    opts.check(eng.backend)
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected 0 to 65535")
    if queue_size < 1 or max_body_mb <= 0 or request_timeout <= 0 or shutdown_timeout <= 0 or header_timeout <= 0:
        raise InputError("--queue-size, --max-body-mb, --request-timeout, --shutdown-timeout and --header-timeout must be positive")
    if api_key is not None and not api_key.strip():
        raise InputError("--api-key / GRM_API_KEY is empty: give a key, or leave both unset for no authentication")
    tmpl = opts.judge(eng.model)
    eng = engine_for(eng, tmpl)
    saved_meta, meta_id = open_meta(opts, tmpl, eng.backend)
    settings = opts.settings(meta_rm_id=meta_id)
    backlog = backlog_for(queue_size)
    try:
        sock = bind(host, port, backlog)  # before the model loads: a port in use fails fast
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    if api_key is None and not is_loopback(host):
        say(f"warning: --host {host} without --api-key: anyone who can reach this port can use the model "
            "(and its GPU); set GRM_API_KEY to require `Authorization: Bearer KEY`", "yellow")
    try:
        engine = load_engine(eng, quiet=False)
        scorer_meta = engine_parts(settings, engine, tmpl, saved_meta, eng)[0]
    except BaseException:
        sock.close()
        raise
    scorer = Scorer(engine, tmpl, settings, queue_size=queue_size, chunk=eng.chunk(settings.samples_per_call), meta_rm=scorer_meta)
    state = ServeState()
    app = build_app(scorer, ServeOptions(api_key=api_key, max_body=int(max_body_mb * 1024 * 1024), request_timeout=request_timeout,
                                         unparsed_reward=unparsed_reward), state)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    say(f"serving {engine.name} on http://{shown}:{bound_port} (POST /score, POST /get_reward, POST /rewards, GET /health, GET /metrics, "
        f"GET /docs{'; Bearer key required' if api_key else ''}); Ctrl-C or SIGTERM stops")

    def draining(signame: str, in_flight: int) -> None:
        say(f"{signame}: finishing {in_flight} request(s) in flight (at most {shutdown_timeout:g} s); new ones get 503")

    try:
        run(app, sock, state, backlog=backlog, drain_timeout=shutdown_timeout, header_timeout=header_timeout, verbose=eng.verbose, on_drain=draining, on_give_up=scorer.abandon)
    finally:
        sock.close()
        scorer.stop()
    say("stopped")
