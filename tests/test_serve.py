"""`grm serve` over real HTTP on loopback (the real engine, the tiny model): routes, every bad input, the
limits, authentication, metrics, OpenAPI, OpenRLHF's contract, load and shutdown."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager

import pytest
from conftest import EXAMPLES, grm, write_jsonl

from grm_cli.serve.rewards import completion_text, group_completions, rewards_from_results


@contextmanager
def server(tiny_model, *extra: str, cache: bool = False, env: dict | None = None, log: list | None = None, handle: dict | None = None):
    """A `grm serve` child process on a free port; yields its URL. `log` collects its stderr lines,
    `handle` gets the process ("proc") and the thread reading its stderr ("reader")."""
    args = [sys.executable, "-m", "grm_cli", "serve", "--model", str(tiny_model), "--ctx", "8192", "--port", "0", *([] if cache else ["--no-cache"]), *extra]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})
    seen = log if log is not None else []
    try:
        deadline = time.time() + 60
        url = None
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("serving"):
                url = line.split(" on ")[1].split(" ")[0].replace("0.0.0.0", "127.0.0.1")
                break
        assert url, "".join(seen)

        def drain() -> None:
            for line in proc.stderr:
                seen.append(line)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        if handle is not None:
            handle.update(proc=proc, reader=reader)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)


def call(url: str, path: str, body=None, raw: bytes | None = None, timeout: float = 120, method: str | None = None, headers: dict | None = None):
    """(status, decoded JSON body, headers: case-insensitive, None when absent); HTTP errors are answers too."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, _json(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read()), e.headers


def _json(data: bytes):
    try:
        return json.loads(data or b"{}")
    except ValueError:
        return {"not json": data[:200].decode("utf-8", "replace")}


RECORDS = [json.loads(x) for x in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()]


SHORT = ("--max-tokens", "8", "--engine", "simple", "--ctx", "2048")  # with the short template: prompts of ~100 tokens


@pytest.fixture(scope="module")
def served(tiny_model, short_template):
    with server(tiny_model, *SHORT, "--template", str(short_template), "--max-body-mb", "0.05") as url:
        yield url


@pytest.mark.slow  # two engines warm up (server and CLI): seconds on a loaded 2-core machine
def test_routes_and_concurrent_clients(served, tiny_model, short_template, tmp_path):
    url = served
    status, health, _ = call(url, "/health")
    assert status == 200 and health["status"] == "ok" and health["model"] == "grm-tiny-test" and health["auth"] is False
    assert call(url, "/health/")[0] == 200 and call(url, "/")[0] == 200

    status, body, headers = call(url, "/score", RECORDS[0])
    assert status == 200 and headers["content-type"] == "application/json" and len(body["results"]) == 1
    r = body["results"][0]
    assert r["id"] == RECORDS[0]["id"] and len(r["scores"]) == 2 and r["run"]["model"] == "grm-tiny-test"

    # Concurrent clients get their own records back, scored as the CLI scores them.
    short = [{"id": f"sum{i}", "prompt": f"What is {i} + {i}?", "responses": [str(2 * i), str(2 * i + 1)], "preferred": 0} for i in range(4)]
    got: dict[int, list] = {}

    def client(i: int) -> None:
        got[i] = call(url, "/score", {"records": short[i: i + 1]} if i % 2 else short[i])[1]["results"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served_results = [r for i in range(4) for r in got[i]]
    assert [r["id"] for r in served_results] == [x["id"] for x in short]
    data = write_jsonl(tmp_path / "four.jsonl", short)
    cli = grm("score", data, "--model", tiny_model, *SHORT, "--template", short_template, "--no-cache", "--json")
    assert cli.returncode == 0, cli.stderr
    expected = [json.loads(x) for x in cli.stdout.splitlines()]
    assert [(r["id"], r["scores"], [s["text"] for s in r["samples"]]) for r in served_results] == \
           [(r["id"], r["scores"], [s["text"] for s in r["samples"]]) for r in expected]


GOOD = {"id": "good", "prompt": "2+2?", "responses": ["4", "5"]}
BAD_BODIES = [  # the bad-input classes of `grm score` (test_bad_input.py), sent over HTTP, and the body's own
    ("invalid JSON", b'{"prompt": "x", "responses": [', "not JSON"),
    ("wrong type", json.dumps({"prompt": "q", "responses": "a"}).encode(), 'field "responses": expected a list'),
    ("missing field", json.dumps({"records": [GOOD, {"responses": ["a", "b"]}]}).encode(), 'request record:1: missing field "prompt"'),
    ("duplicate id", json.dumps([GOOD, GOOD]).encode(), "duplicate id 'good'"),
    ("empty response", json.dumps({"prompt": "q", "responses": ["a", " "]}).encode(), "response is empty"),
    ("lone surrogate", b'{"prompt": "caf\\ud800e", "responses": ["a", "b"]}', 'field "prompt": holds a lone surrogate'),
    ("too many responses", json.dumps({"prompt": "q", "responses": [str(i) for i in range(17)]}).encode(), "at most 16"),
    ("over the context", json.dumps({"prompt": "long " * 9500, "responses": ["a", "b"]}).encode(), "the context is"),
    ("label with a 1..10 template", json.dumps({"prompt": "q", "completion": "a", "label": True}).encode(), 'field "label"'),
    ("invalid UTF-8", b'{"prompt": "caf\xe9", "responses": ["a", "b"]}', "not UTF-8"),
    ("nested too deep", b"[" * 5000 + b"]" * 5000, "nested deeper than"),
    ("JSON null", b"null", "no records"),
    ("empty body", b"", "empty"),
    ("no records", b"[]", "no records"),
]


@pytest.mark.parametrize("name, raw, words", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_400_naming_the_problem(served, name, raw, words):
    status, body, _ = call(served, "/score", raw=raw, method="POST")
    assert status == 400, (status, body)
    assert words in body["error"] and "Traceback" not in body["error"], body
    assert call(served, "/health")[0] == 200  # and the server keeps serving


def test_every_error_is_json(served):
    url = served
    for method, path, code in (("GET", "/nowhere", 404), ("POST", "/nowhere", 404), ("DELETE", "/score", 405), ("GET", "/score", 405),
                               ("PUT", "/health", 405), ("GET", "/get_reward", 405), ("PATCH", "/rewards", 405)):
        status, body, headers = call(url, path, raw=b"{}" if method in ("POST", "PUT", "PATCH") else None, method=method)
        assert status == code and isinstance(body.get("error"), str) and headers["content-type"] == "application/json", (method, path, status, body)
        if code == 405:
            assert headers["allow"] and method in body["error"]
    assert "GET /health" in call(url, "/nowhere")[1]["error"]  # a 404 lists the routes
    for route in ("/get_reward", "/rewards"):
        status, body, _ = call(url, route, raw=b"null")
        assert status == 400 and body["error"].startswith("request: expected")


def test_body_limit_answers_a_readable_413(served):
    """--max-body-mb 0.05 here: a 60 kB body, a 20 MB one (read to its end, so the client sees the answer
    and no reset), a chunked one without Content-Length, and one announced with Expect: 100-continue."""
    url = served
    for size in (60_000, 20_000_000):
        status, body, headers = call(url, "/score", raw=b"x" * size)
        assert status == 413 and "at most 52428" in body["error"] and headers["connection"] == "close"
    host, port = url.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/score", body=(b"[" * 10_000 for _ in range(20)), headers={"Content-Type": "application/json"}, encode_chunked=True)
    answer = conn.getresponse()
    assert answer.status == 413 and "over 52428 bytes" in json.loads(answer.read())["error"]
    with socket.create_connection((host, int(port)), timeout=30) as s:  # headers only: the body is never sent
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\nExpect: 100-continue\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413") and b"9000000 bytes" in reply
    assert call(url, "/score", GOOD)[0] == 200  # and the next request is served


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="[^"]*")(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def wait_until_scoring(url: str, timeout: float = 60) -> None:
    """Until the engine is on some records (read from /metrics)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
            if parse_metrics(r.read().decode())["grm_records_active"][0][1] >= 1:
                return
        time.sleep(0.02)


def parse_metrics(text: str) -> dict[str, list[tuple[dict, float]]]:
    """Prometheus text format, strictly: every line a HELP/TYPE comment or one sample."""
    out: dict[str, list[tuple[dict, float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram") and name not in types
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(5))))
    for name in out:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"{name} has no TYPE"
    return out


def test_metrics_in_prometheus_text(served):
    url = served
    assert call(url, "/score", GOOD)[0] == 200
    call(url, "/nowhere/at/all")
    req = urllib.request.Request(url + "/metrics")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        m = parse_metrics(r.read().decode())
    requests = {(lb["route"], lb["method"], lb["status"]): v for lb, v in m["grm_http_requests_total"]}
    assert requests[("/score", "POST", "200")] >= 1 and requests[("other", "GET", "404")] >= 1
    assert not any(route.startswith("/nowhere") for route, _, _ in requests)  # raw paths never become labels
    buckets = [(lb["le"], v) for lb, v in m["grm_http_request_duration_seconds_bucket"] if lb["route"] == "/score"]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == "+Inf"
    assert buckets[-1][1] == next(v for lb, v in m["grm_http_request_duration_seconds_count"] if lb["route"] == "/score")
    value = {name: samples[0][1] for name, samples in m.items() if len(samples) == 1}
    assert value["grm_queue_depth"] == 0 and value["grm_queue_capacity"] == 32 and value["grm_requests_in_flight"] == 1  # this scrape
    assert value["grm_records_scored_total"] >= 1 and value["grm_samples_total"] >= 1
    assert value["grm_generated_tokens_total"] > 0 and value["grm_generated_tokens_per_second"] > 0 and value["grm_draining"] == 0


def test_openapi_schema_describes_the_bodies(served):
    status, doc, _ = call(served, "/openapi.json")
    assert status == 200
    for path in ("/score", "/get_reward", "/rewards"):
        op = doc["paths"][path]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"], path
        assert {"400", "401", "413", "503", "504"} <= set(op["responses"]), path
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert {"RecordIn", "GetRewardIn", "GetRewardOut", "RewardsIn"} <= refs <= set(doc["components"]["schemas"])
    assert doc["components"]["schemas"]["GetRewardOut"]["required"] == ["rewards", "scores", "extra_logs", "unparsed"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer" and doc["paths"]["/score"]["post"]["security"] == [{"HTTPBearer": []}]
    with urllib.request.urlopen(served + "/docs", timeout=30) as r:
        assert r.status == 200 and "swagger" in r.read().decode().lower()


@pytest.mark.slow  # two servers start
def test_api_key_and_the_exposure_warning(tiny_model, short_template):
    from grm_cli.integrations.client import RewardClient, ServerError

    log: list[str] = []
    with server(tiny_model, *SHORT, "--template", str(short_template), "--host", "0.0.0.0", env={"GRM_API_KEY": "s3cret-key"}, log=log) as url:
        assert not any("--api-key" in line for line in log)  # a key: no warning
        assert call(url, "/health")[1]["auth"] is True  # probes need no key
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0LWtleQ=="}, {"Authorization": "Bearer s3cret-key-and-more"}):
            status, body, got = call(url, "/score", GOOD, headers=headers)
            assert status == 401 and "API key" in body["error"] and got["www-authenticate"] == "Bearer", headers
        assert call(url, "/metrics", headers={})[0] == 401
        assert call(url, "/score", GOOD, headers={"Authorization": "Bearer s3cret-key"})[0] == 200
        with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer s3cret-key"}), timeout=30) as r:
            assert r.status == 200
        with pytest.raises(ServerError) as exc:
            RewardClient(url, api_key="").rewards(["q"], ["a"])
        assert exc.value.status == 401 and "GRM_API_KEY" in str(exc.value)
        assert len(RewardClient(url, api_key="s3cret-key").rewards(["q"], ["a"])[0]) == 1
    log.clear()
    with server(tiny_model, "--host", "0.0.0.0", log=log):
        assert any("warning: --host 0.0.0.0 without --api-key" in line and "anyone who can reach" in line for line in log), log
    assert grm("serve", "--model", tiny_model, "--api-key", " ").returncode == 2


def test_openrlhf_route(tiny_model, short_template):
    with server(tiny_model, "--max-tokens", "8", "--template", str(short_template), cache=True) as url:  # the sample cache, used from the server's worker thread
        prompts = ["What is 2+2?", "What is 2+2?", "Name a colour.", "Name a colour."]
        responses = [" 4", " 5", " Blue.", ""]  # an empty rollout gets the lowest score, and fails nothing else
        request = {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts, "labels": ["4", "4", "", ""]}
        status, body, _ = call(url, "/get_reward", request)
        assert status == 200, body
        assert len(body["rewards"]) == 4 and all(1 <= x <= 10 for x in body["rewards"]) and body["unparsed"] == []
        assert body["rewards"][3] == 1.0
        assert body["scores"] == [(x - 1) / 9 for x in body["rewards"]]  # 0..1 for OpenRLHF's dynamic filtering
        assert body["extra_logs"] == {"grm_parsed": [1.0] * 4, "grm_votes": [1.0, 1.0, 1.0, 0.0]}
        again = call(url, "/get_reward", request)[1]
        assert again["rewards"] == body["rewards"]
        status, body, _ = call(url, "/get_reward", {"query": ["abc"]})
        assert status == 400 and '"prompts"' in body["error"]
        status, body, _ = call(url, "/get_reward", {"query": ["abc"], "prompts": ["xyz"]})
        assert status == 400 and "does not start with its prompt" in body["error"]
        status, body, _ = call(url, "/score", raw=b"[" * 100_000 + b"]" * 100_000)  # 200 kB, under the default limit
        assert status == 400 and "nested deeper than" in body["error"]


@pytest.mark.slow
def test_unparsed_reward_fills_what_no_sample_scored(tiny_model, short_template):
    with server(tiny_model, "--max-tokens", "4", "--template", str(short_template), "--free", "--unparsed-reward", "0") as url:  # 4 free tokens: no score line
        status, body, _ = call(url, "/get_reward", {"query": ["Q? yes", "Q? no"], "prompts": ["Q?", "Q?"]})
        assert status == 200 and body["unparsed"] == [0, 1] and body["rewards"] == [0.0, 0.0] and body["scores"] == [0.0, 0.0]
        assert body["extra_logs"]["grm_parsed"] == [0.0, 0.0]
        status, body, _ = call(url, "/rewards", {"prompts": ["Q?", "Q?"], "completions": ["yes", "no"]})
        assert status == 200 and body["rewards"] == [None, None] and body["score_range"] == [1, 10]  # the raw route keeps null


@pytest.mark.slow
def test_a_full_queue_answers_503(tiny_model):
    with server(tiny_model, "--max-tokens", "120", "-k", "4", "--engine", "simple", "--free", "--queue-size", "1") as url:
        statuses: list[tuple[int, dict]] = []

        def client() -> None:
            s, _, headers = call(url, "/score", RECORDS[0], timeout=300)
            statuses.append((s, headers))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
        codes = sorted(s for s, _ in statuses)
        assert 200 in codes and 503 in codes, codes
        assert all(h.get("Retry-After") == "1" for s, h in statuses if s == 503)
        assert call(url, "/health")[0] == 200


@pytest.mark.slow
def test_a_request_past_the_timeout_answers_504(tiny_model):
    with server(tiny_model, "--max-tokens", "300", "--free", "--engine", "simple", "--request-timeout", "0.5") as url:
        status, body, _ = call(url, "/score", RECORDS[0])
        assert status == 504 and "--request-timeout" in body["error"]
        assert call(url, "/health")[0] == 200


@pytest.mark.slow
def test_128_concurrent_clients_all_get_an_http_answer(tiny_model, short_template):
    """The issue's failure: clients past the listen backlog saw ConnectionResetError. Now every one of 128
    clients, released at once, gets 200 or 503 with Retry-After, and none a network error."""
    with server(tiny_model, "--ctx", "4096", "--max-tokens", "4", "--template", str(short_template)) as url:
        barrier = threading.Barrier(128)
        answers: list = []

        def client(i: int) -> None:
            body = json.dumps({"id": f"r{i}", "prompt": f"What is {i}+{i}?", "responses": [str(2 * i), str(2 * i + 1)]}).encode()
            req = urllib.request.Request(url + "/score", data=body, headers={"Content-Type": "application/json"})
            barrier.wait()
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    answers.append((r.status, json.loads(r.read())["results"][0]["id"] == f"r{i}"))
            except urllib.error.HTTPError as e:
                answers.append((e.code, e.headers.get("Retry-After") == "1" and "busy" in json.loads(e.read())["error"]))
            except OSError as e:  # a reset, refused or timed-out connection
                answers.append((type(e).__name__, False))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(128)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = Counter(code for code, _ in answers)
        assert len(answers) == 128 and set(codes) <= {200, 503}, codes
        assert all(ok for _, ok in answers) and codes[200] >= 32, codes  # the queue's 32 and the batch in progress
        assert call(url, "/health")[0] == 200


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_and_exits_0(tiny_model):
    log: list[str] = []
    handle: dict = {}
    with server(tiny_model, "--max-tokens", "48", "--free", "-k", "2", "--engine", "simple", log=log, handle=handle) as url:
        proc = handle["proc"]
        answers: list = []

        def client() -> None:
            answers.append(call(url, "/score", RECORDS[0], timeout=120)[0])

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        wait_until_scoring(url)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        status, body, headers = call(url, "/score", GOOD)  # a new request while draining
        assert status == 503 and "shutting down" in body["error"] and headers["Retry-After"] == "5"
        for t in threads:
            t.join()
        assert answers == [200, 200, 200]
        assert proc.wait(timeout=60) == 0
        handle["reader"].join(timeout=10)
    assert any("SIGTERM: finishing" in line for line in log) and log[-1].startswith("stopped"), log


@pytest.mark.slow
def test_meta_rm_guided_voting_over_http(tiny_model, short_template, tmp_path):
    data, run, head = write_jsonl(tmp_path / "d.jsonl", RECORDS[:3]), tmp_path / "run.jsonl", tmp_path / "metarm.json"
    common = ["--model", tiny_model, "--template", short_template, "--ctx", "4096"]
    assert grm("score", data, *common, "-k", "4", "--max-tokens", "4", "--no-cache", "-o", run).returncode == 0
    trained = grm("train", "metarm", run, "-o", head, *common)
    assert trained.returncode == 0, trained.stderr
    with server(tiny_model, "-k", "4", "--max-tokens", "4", "--template", str(short_template), "--meta-rm", str(head), "--k-meta", "2") as url:
        status, body, _ = call(url, "/score", RECORDS[3])
        assert status == 200, body
        r = body["results"][0]
        assert r["run"]["k_meta"] == 2 and r["votes"] == 2 and all(0 <= x["meta_score"] <= 1 for x in r["samples"])
        assert sum(bool(x["meta_kept"]) for x in r["samples"]) == 2


def test_the_base_install_never_imports_the_web_stack():
    code = ("import sys; from grm_cli.cli import main; import grm_cli.serve.scorer, grm_cli.serve.contracts, grm_cli.integrations.trl, grm_cli.integrations.verl; "
            "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


# -- the pieces, without a server -------------------------------------------------------------------
def test_openrlhf_answer_scales_scores_and_fills_unparsed():
    from grm_cli.serve.contracts import openrlhf_answer

    got = openrlhf_answer([10.0, None, 1.0, 5.5], [2, 0, 1, 2], (1, 10), unparsed_reward=-1.0)
    assert got == {"rewards": [10.0, -1.0, 1.0, 5.5], "scores": [1.0, 0.0, 0.0, 0.5], "unparsed": [1],
                   "extra_logs": {"grm_parsed": [1.0, 0.0, 1.0, 1.0], "grm_votes": [2.0, 0.0, 1.0, 2.0]}}
    assert openrlhf_answer([None], [0], (1, 10), None)["scores"] == [None]


def test_completion_bodies_are_checked():
    from grm_cli.errors import InputError
    from grm_cli.serve.contracts import parse_completions

    assert parse_completions({"prompts": ["q", [{"role": "user", "content": "p"}]], "completions": ["a", "b"]})[1] == ["a", "b"]
    for body, words in (([], "expected {"), ({"prompts": "q", "completions": []}, 'field "prompts"'), ({"prompts": ["q"], "completions": []}, "1 prompts for 0"),
                        ({"prompts": ["q"], "completions": [7]}, 'field "completions", item 0')):
        with pytest.raises(InputError, match=re.escape(words)):
            parse_completions(body)


def test_loopback_is_told_from_exposed():
    from grm_cli.serve.runner import backlog_for, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("no-such-host.invalid")
    assert backlog_for(32) == 2048 and backlog_for(1000) == 8000


def test_completions_follow_the_templates_response_limits():
    from grm_cli.core.prompt import load_template

    records, slots = group_completions(["q"] * 3, ["a", "b", "c"], load_template("single"))
    assert [r.responses for r in records] == [("a",), ("b",), ("c",)] and slots == [(0, 0), (1, 0), (2, 0)]
    records, _ = group_completions(["q"] * 17, [str(i) for i in range(17)], load_template("judge"))
    assert [len(r.responses) for r in records] == [9, 8]  # never a last record of 1 for a template that needs 2


def test_completions_of_one_prompt_are_judged_together():
    prompts = ["p1", "p2", "p1", [{"role": "user", "content": "p3"}], "p1"]
    completions = ["a", "b", "c", [{"role": "assistant", "content": "d"}], "e"]
    records, slots = group_completions(prompts, completions)
    assert [r.responses for r in records] == [("a", "c", "e"), ("b",), ("d",)]
    assert slots == [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2)]
    assert records[2].query == "p3"
    many, slots = group_completions(["q"] * 20, [str(i) for i in range(20)])
    assert [len(r.responses) for r in many] == [10, 10] and slots[17] == (1, 7)  # even parts of at most 16
    with pytest.raises(TypeError):
        completion_text(42)


def test_rewards_are_mean_scores_and_none_when_unparsed():
    from grm_cli.core.voting import vote

    class R:
        def __init__(self, samples, n):
            self.verdict = vote(samples, n)

    results = [R([(8, 2), (6, 4)], 2), R([None, None], 1)]
    assert rewards_from_results(results, [(0, 0), (1, 0), (0, 1)], 3) == [7.0, None, 3.0]


@pytest.mark.slow
def test_adaptive_voting_over_http(tiny_model, short_template):
    """`grm serve -k 6 --adaptive stat`: each record's result says how many samples it used and why it stopped."""
    with server(tiny_model, *SHORT, "--template", str(short_template), "-k", "6", "--adaptive", "stat") as url:
        status, body, _ = call(url, "/score", [{"prompt": "2+2?", "responses": ["4", "5"]}, {"prompt": "3+3?", "responses": ["6", "7", "8"]}])
    assert status == 200, body
    for r in body["results"]:
        assert 4 <= r["samples_used"] == len(r["samples"]) <= 6 and r["run"]["adaptive"] == "stat"
        assert (r["stopped_by"] is None) == (r["samples_used"] == 6)
    p = grm("serve", "--model", tiny_model, "--adaptive", "sometimes", "-k", "4")
    assert p.returncode == 2 and "expected exact or stat" in p.stderr


@pytest.mark.slow  # a server scores for seconds and is stopped mid-work
def test_sigterm_past_the_drain_timeout_answers_json_503_and_exits_cleanly(tiny_model):
    """More work in flight than --shutdown-timeout covers: every unfinished request gets a JSON 503 with
    Retry-After (not uvicorn's plain-text 500), and the process stops the engine before exiting: exit 0, no
    crash (llama.cpp freed under a running decode ended in a segfault)."""
    log: list = []
    handle: dict = {}
    rows = [{"prompt": f"Write a long story number {i}.", "responses": ["Once upon a time.", "It was a dark night."]} for i in range(4)]
    with server(tiny_model, "--max-tokens", "128", "-k", "4", "--shutdown-timeout", "1", "--queue-size", "16", log=log, handle=handle) as url:
        proc = handle["proc"]
        answers: list = []

        def client():
            status, body, headers = call(url, "/score", rows, timeout=300)
            answers.append((status, body, headers))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until_scoring(url)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=300)
        assert proc.wait(timeout=300) == 0, "".join(log)
    assert len(answers) == 4
    for status, body, headers in answers:
        assert status in (200, 503), (status, body)
        if status == 503:
            assert "shutting down" in body["error"] and headers["Retry-After"] == "5"
    assert any(status == 503 for status, _, _ in answers), [a[0] for a in answers]  # the drain timeout did cut work short


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (reading returns nothing, or the connection resets)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.mark.slow  # a server, and seconds of waiting for its deadline
def test_a_client_that_never_finishes_its_headers_is_disconnected(tiny_model, short_template):
    with server(tiny_model, *SHORT, "--template", str(short_template), "--header-timeout", "1") as url:
        host, port = url.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)))
        dribbler = socket.create_connection((host, int(port)))
        head = b"POST /score HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400
        stop = threading.Event()

        def dribble() -> None:  # a byte every 0.1 s, forever: the clock runs from the first byte, not the last
            for b in head:
                if stop.is_set():
                    return
                try:
                    dribbler.send(bytes([b]))
                except OSError:
                    return
                time.sleep(0.1)

        threading.Thread(target=dribble, daemon=True).start()
        # A request whose head is complete may then take its time: its body comes 2 s later and is answered.
        body = json.dumps({"records": [GOOD]}).encode()
        patient = socket.create_connection((host, int(port)))
        patient.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(2.0)
        assert call(url, "/health")[0] == 200  # the server is not held up meanwhile
        patient.sendall(body)
        patient.settimeout(120)
        answer = patient.recv(4096)
        try:
            assert _closed_within(silent, 30), "a client that sends nothing keeps its socket"
            assert _closed_within(dribbler, 30), "a client that dribbles its headers keeps its socket"
        finally:
            stop.set()
            for s in (silent, dribbler, patient):
                s.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
