"""--backend openai: scoring through a real OpenAI-compatible server on loopback (llama-cpp-python's own
server, serving the tiny model), and the client's retries against a server that answers 429 first."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import EXAMPLES, grm

from grm_cli.core.prompt import load_template
from grm_cli.engine.base import GenerationRequest
from grm_cli.engine.openai import OpenAIEngine
from grm_cli.errors import ModelError
from grm_cli.scoring.plan import forced_tail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tiny_model):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "8192", "--model_alias", "tiny"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("llama_cpp.server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_score_and_resume_through_a_real_server(llama_server, tmp_path):
    out = tmp_path / "remote.jsonl"
    args = ["score", str(EXAMPLES / "llmbar.jsonl"), "--backend", "openai", "--base-url", llama_server, "-k", "2", "--max-tokens", "8",
            "--ctx", "8192", "--concurrency", "4", "-o", str(out)]
    p = grm(*args, "--json")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert [x["id"] for x in lines] == [json.loads(x)["id"] for x in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()]
    for x in lines:
        assert x["run"]["model"] == "tiny" and len(x["samples"]) == 2
        assert all(s["scores"] is not None and len(s["scores"]) == 2 for s in x["samples"])  # the forced line, constrained by the server's grammar
        assert len({tuple(s["order"]) for s in x["samples"]}) >= 1
    assert "speed: 8 records, 16 samples" in p.stderr
    again = grm(*args)
    assert again.returncode == 0 and "skipping 8 records already in" in again.stderr


def test_principles_from_a_served_model(llama_server):
    p = grm("principles", str(EXAMPLES / "prompt.txt"), "--backend", "openai", "--base-url", llama_server, "--max-tokens", "16", "--json")
    assert p.returncode in (0, 4), p.stderr
    assert json.loads(p.stdout)["model"] == "tiny"


def test_backend_flags_are_checked():
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--backend", "openai")
    assert p.returncode == 2 and "--base-url" in p.stderr
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--remote-model", "m",
            "--api-key-env", "GRM_TEST_UNSET_KEY")
    assert p.returncode == 2 and "GRM_TEST_UNSET_KEY" in p.stderr
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "-k", "2", "--meta-rm", "m.json", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1")
    assert p.returncode == 2 and "--meta-rm with a head file reads the model's hidden states" in p.stderr
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--meta-rm", "m.json")
    assert p.returncode == 2 and "give -k 2 or more" in p.stderr


def test_a_wrong_base_url_says_what_to_fix(llama_server):
    root = llama_server[: -len("/v1")]
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--backend", "openai", "--base-url", root, "--max-tokens", "4")
    assert p.returncode == 3 and "ending in /v1" in p.stderr
    with pytest.raises(ModelError, match="is it running"):
        OpenAIEngine("http://127.0.0.1:9/v1", max_retries=0)


class _Flaky(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = 2

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Flaky.calls.append(body)
        if len(_Flaky.calls) <= _Flaky.fail_first:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        if body.get("max_tokens") == 1:
            data = b'{"error": "max_tokens too small"}'
            self.send_response(400)
        else:
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Fine.\nScores: \\boxed{7, 3}"}, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 11, "completion_tokens": 6}}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_retries_on_429_then_succeeds_and_reports_other_errors():
    _Flaky.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        engine = OpenAIEngine(url, model="m", backoff=0.01)
        req = GenerationRequest(({"role": "user", "content": "score"},), "Specific Criteria:", 64, 0.5, 7, tail=forced_tail(load_template("pointwise"), 2))
        gen = engine.generate(req)
        assert gen.text.endswith("\\boxed{7, 3}") and not gen.forced_tail and gen.completion_tokens == 6
        assert engine.retries == 2 and len(_Flaky.calls) == 3
        sent = _Flaky.calls[-1]
        assert sent["seed"] == 7 and sent["temperature"] == 0.5 and sent["messages"][-1] == {"role": "assistant", "content": "Specific Criteria:"}
        assert sent["continue_final_message"] is True
        with pytest.raises(ModelError, match="answered 400: .*max_tokens too small"):
            engine.generate(GenerationRequest(({"role": "user", "content": "x"},), "", 1, 0.0, 1))
    finally:
        httpd.shutdown()
    dead = OpenAIEngine(url, model="m", backoff=0.01, max_retries=1, timeout=0.5)  # the port still accepts, nothing answers
    with pytest.raises(ModelError, match="no answer after 2 tries"):
        dead.generate(GenerationRequest(({"role": "user", "content": "x"},), "", 8, 0.0, 1))


class _NServer(BaseHTTPRequestHandler):
    calls: list = []
    honour_n = True

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _NServer.calls.append(body)
        n = body.get("n", 1) if _NServer.honour_n else 1
        choices = [{"message": {"content": f"choice {i}\nScores: \\boxed{{{i + 1}, 2}}"}, "finish_reason": "stop"} for i in range(n)]
        data = json.dumps({"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 4 * n}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.parametrize("honour_n", [True, False])
def test_samples_of_one_prompt_go_as_one_request_with_n(honour_n):
    _NServer.calls, _NServer.honour_n = [], honour_n
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        engine = OpenAIEngine(f"http://127.0.0.1:{httpd.server_address[1]}/v1", model="m", use_n=True)
        same = [GenerationRequest(({"role": "user", "content": "A"},), "", 16, 0.5, seed) for seed in (1, 2, 3)]
        other = GenerationRequest(({"role": "user", "content": "B"},), "", 16, 0.5, 4)
        gens = engine.generate_many([same[0], other, same[1], same[2]])
        assert len(gens) == 4 and all(g.text.startswith("choice") for g in gens)
        with_n = [c for c in _NServer.calls if c.get("n") == 3]
        assert len(with_n) == 1 and with_n[0]["messages"][0]["content"] == "A"
        # A server that ignores n returns one choice: the other two samples are asked for one by one.
        assert len(_NServer.calls) == (2 if honour_n else 4)
        if honour_n:
            assert [gens[0].text, gens[2].text, gens[3].text] == [f"choice {i}\nScores: \\boxed{{{i + 1}, 2}}" for i in range(3)]
    finally:
        httpd.shutdown()


class _Strict(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Strict.calls.append(body)
        unknown = [k for k in ("continue_final_message", "add_generation_prompt", "grammar", "guided_regex") if k in body]
        if unknown:
            data = json.dumps({"error": f"Unrecognized request argument supplied: {unknown[0]}"}).encode()
            self.send_response(400)
        else:
            data = json.dumps({"choices": [{"message": {"content": "ok\nScores: \\boxed{2, 8}"}}]}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_a_strict_server_is_asked_again_without_the_extensions():
    _Strict.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Strict)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        engine = OpenAIEngine(f"http://127.0.0.1:{httpd.server_address[1]}/v1", model="m")
        req = GenerationRequest(({"role": "user", "content": "score"},), "Specific Criteria:", 16, 0.0, 1)
        assert engine.generate(req).text.endswith("\\boxed{2, 8}")
        assert engine.generate(req).text.endswith("\\boxed{2, 8}")
        assert len(_Strict.calls) == 3  # refused once, then plain requests only
    finally:
        httpd.shutdown()


@pytest.mark.slow
def test_scalar_meta_rm_guides_the_vote_of_a_served_grm(llama_server, tmp_path):
    """A scalar meta RM reads text, not the GRM's hidden states: guided voting works on a remote GRM too."""
    pytest.importorskip("transformers")
    from families import build
    from test_families import _scalar_meta_rm

    meta = _scalar_meta_rm({"gemma2": build("gemma2", tmp_path / "gemma2")}, tmp_path / "metarm")
    two = tmp_path / "two.jsonl"
    two.write_text("".join((EXAMPLES / "llmbar.jsonl").read_text().splitlines(keepends=True)[:2]))
    p = grm("score", str(two), "--backend", "openai", "--base-url", llama_server, "-k", "3", "--k-meta", "1",
            "--meta-rm", str(meta), "--max-tokens", "8", "--ctx", "8192", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    for line in p.stdout.splitlines():
        r = json.loads(line)
        parsed = [s for s in r["samples"] if s["scores"] is not None]
        assert all(0.0 < s["meta_score"] < 1.0 for s in parsed)
        best = max(parsed, key=lambda s: s["meta_score"])
        assert [s["meta_kept"] for s in parsed] == [s is best for s in parsed] and r["scores"] == best["scores"]
    # a head file of `grm train metarm` needs the GRM's hidden states, which a server does not give
    head = tmp_path / "head.json"
    head.write_text("{}")
    q = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--backend", "openai", "--base-url", llama_server, "-k", "2", "--meta-rm", str(head))
    assert q.returncode == 2 and "--backend llama" in q.stderr
