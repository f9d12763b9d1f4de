"""`grm serve` over real HTTP on loopback (the real engine, the tiny model), the OpenRLHF route, and the TRL
reward function."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from conftest import EXAMPLES, grm

from grm_cli.serve.rewards import completion_text, group_completions, rewards_from_results


@contextmanager
def server(tiny_model, *extra: str, cache: bool = False):
    args = [sys.executable, "-m", "grm_cli", "serve", "--model", str(tiny_model), "--ctx", "8192", "--port", "0", *([] if cache else ["--no-cache"]), *extra]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 60
        url = None
        seen = []
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("serving"):
                url = line.split(" on ")[1].split(" ")[0]
                break
        assert url, "".join(seen)
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def call(url: str, path: str, body=None, raw: bytes | None = None, timeout: float = 120):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


RECORDS = [json.loads(x) for x in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()]


def test_routes_errors_and_concurrent_clients(tiny_model, tmp_path):
    with server(tiny_model, "--max-tokens", "8", "--engine", "simple", "--max-body-mb", "0.05") as url:
        status, health, _ = call(url, "/health")
        assert status == 200 and health["status"] == "ok" and health["model"] == "grm-tiny-test"

        status, body, _ = call(url, "/score", RECORDS[0])
        assert status == 200 and len(body["results"]) == 1
        r = body["results"][0]
        assert r["id"] == RECORDS[0]["id"] and len(r["scores"]) == 2 and r["run"]["model"] == "grm-tiny-test"

        # Bad input: a clear 400, and the server keeps serving.
        status, body, _ = call(url, "/score", raw=b'{"prompt": "x", "responses": [')
        assert status == 400 and "not JSON" in body["error"]
        status, body, _ = call(url, "/score", raw=b"[" * 5000 + b"]" * 5000)  # 10 kB: under --max-body-mb
        assert status == 400 and "nested deeper than" in body["error"]
        status, body, _ = call(url, "/score", {"records": [RECORDS[0], {"responses": ["a", "b"]}]})
        assert status == 400 and "request record:1" in body["error"] and '"prompt"' in body["error"]
        status, body, _ = call(url, "/score", raw=b"x" * 60_000)
        assert status == 413 and "at most" in body["error"]
        status, body, _ = call(url, "/nowhere", {})
        assert status == 404
        status, body, _ = call(url, "/score", raw=b"null")  # JSON null is a bad body, not "no reply"
        assert status == 400 and "no records" in body["error"]
        assert call(url, "/get_reward", raw=b"null")[0] == 400
        req = urllib.request.Request(url + "/score", method="GET")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=30)
        assert exc.value.code == 405 and exc.value.headers["Allow"] == "POST"
        status, body, _ = call(url, "/score", {"prompt": "long " * 9500, "responses": ["a", "b"]})
        assert status == 400 and "the context is" in body["error"], body
        assert call(url, "/health")[0] == 200

        # Concurrent clients get their own records back, scored as the CLI scores them.
        got: dict[int, list] = {}

        def client(i: int) -> None:
            got[i] = call(url, "/score", {"records": RECORDS[2 * i: 2 * i + 2]})[1]["results"]

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        served = [r for i in range(4) for r in got[i]]
        assert [r["id"] for r in served] == [x["id"] for x in RECORDS]
        cli = grm("score", EXAMPLES / "llmbar.jsonl", "--model", tiny_model, "--ctx", "8192", "--max-tokens", "8", "--engine", "simple", "--no-cache", "--json")
        assert cli.returncode == 0, cli.stderr
        expected = [json.loads(x) for x in cli.stdout.splitlines()]
        assert [(r["id"], r["scores"], [s["text"] for s in r["samples"]]) for r in served] == \
               [(r["id"], r["scores"], [s["text"] for s in r["samples"]]) for r in expected]


def test_openrlhf_route(tiny_model):
    with server(tiny_model, "--max-tokens", "8", cache=True) as url:  # the sample cache, used from the server's worker thread
        prompts = ["What is 2+2?", "What is 2+2?", "Name a colour.", "Name a colour."]
        responses = [" 4", " 5", " Blue.", ""]  # an empty rollout gets the lowest score, and fails nothing else
        status, body, _ = call(url, "/get_reward", {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts})
        assert status == 200, body
        assert len(body["rewards"]) == 4 and all(1 <= x <= 10 for x in body["rewards"]) and body["unparsed"] == []
        assert body["rewards"][3] == 1.0
        again = call(url, "/get_reward", {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts})[1]
        assert again["rewards"] == body["rewards"]
        status, body, _ = call(url, "/get_reward", {"query": ["abc"]})
        assert status == 400 and '"prompts"' in body["error"]
        status, body, _ = call(url, "/get_reward", {"query": ["abc"], "prompts": ["xyz"]})
        assert status == 400 and "does not start with its prompt" in body["error"]


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


# -- completions as records, rewards back ---------------------------------------------------------
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


def test_trl_reward_function(tiny_engine):
    from grm_cli.core.prompt import load_template
    from grm_cli.scoring.pipeline import ScoreSettings, score_records
    from grm_cli.serve.trl import trl_reward

    reward = trl_reward(tiny_engine, max_tokens=8)
    prompts = ["What is 2+2?"] * 2 + [[{"role": "user", "content": "Name a colour."}]] * 2
    completions = ["4", "5", [{"role": "assistant", "content": "Blue."}], [{"role": "assistant", "content": "Seven."}]]
    got = reward(prompts=prompts, completions=completions, completion_ids=None)
    assert len(got) == 4 and all(isinstance(x, float) and 1 <= x <= 10 for x in got)
    records, _ = group_completions(prompts, completions)
    direct = list(score_records(records, tiny_engine, load_template("pointwise"), ScoreSettings(max_tokens=8)))
    assert got == [float(direct[0].verdict.totals[0]), float(direct[0].verdict.totals[1]), float(direct[1].verdict.totals[0]), float(direct[1].verdict.totals[1])]
    assert reward(prompts=prompts, completions=completions) == got  # the same completions, the same rewards
