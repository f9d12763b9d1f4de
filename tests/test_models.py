"""grm pull / models and --model hf://... against a local server speaking the hub's file protocol
(huggingface-hub itself does the download; only the network end is local)."""

from __future__ import annotations

import json

import pytest
from conftest import grm_process
from local_hub import serve_repo

from grm_cli.errors import ModelError
from grm_cli.models.registry import HubFile, parse_hf

COMMIT = "c0ffee" + "0" * 34


@pytest.fixture
def hub(tiny_model):
    """A local hub serving one repo, owner/judge, with tiny.gguf; counts the downloads."""
    with serve_repo("owner/judge", {"tiny.gguf": tiny_model.read_bytes()}, COMMIT) as served:
        yield served


def grm(env, *args, stdin=None):
    # a child process: huggingface-hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported
    return grm_process(*args, stdin=stdin, env={"HF_HUB_DISABLE_TELEMETRY": "1", **env}, timeout=120)


def test_parse_hf():
    assert parse_hf("hf://owner/judge/tiny.gguf") == HubFile("owner/judge", "tiny.gguf")
    assert parse_hf("hf://owner/judge@v1/sub/tiny.gguf") == HubFile("owner/judge", "sub/tiny.gguf", "v1")
    for bad in ("hf://owner/tiny.gguf", "hf://owner/judge/readme.md", "hf:/x"):
        with pytest.raises(ModelError):
            parse_hf(bad)


def test_pull_then_score_then_offline(hub, tmp_path, tiny_model):
    endpoint, gets = hub
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
    p = grm(env, "pull", "hf://owner/judge/tiny.gguf")
    assert p.returncode == 0, p.stderr
    path = p.stdout.strip()
    assert path.endswith("tiny.gguf") and open(path, "rb").read() == tiny_model.read_bytes() and len(gets) == 1
    # --model takes the hf:// name everywhere; the cached file is used, nothing is downloaded again
    q = grm(env, "score", "-", "--model", "hf://owner/judge/tiny.gguf", "--ctx", "8192", "--max-tokens", "4", "--json",
            stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout)["run"]["model"] == "grm-tiny-test" and len(gets) == 1
    # offline: the cache still answers; a file not in it is a clear message, exit 3
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    assert grm(offline, "pull", "hf://owner/judge/tiny.gguf").stdout.strip() == path
    r = grm(offline, "pull", "hf://owner/judge/other.gguf")
    assert r.returncode == 3 and "offline (HF_HUB_OFFLINE is set)" in r.stderr and "Traceback" not in r.stderr
    listing = json.loads(grm(env, "models", "--json").stdout)
    assert {"name": "hf://owner/judge/tiny.gguf", "path": path} in listing["local"]


def test_missing_repo_and_file(hub, tmp_path):
    # (an unreachable hub is retried by huggingface-hub for ~25 s before grm's message: not run here)
    endpoint, _ = hub
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
    r = grm(env, "pull", "hf://owner/judge/absent.gguf")
    assert r.returncode == 3 and "absent.gguf" in r.stderr and "Traceback" not in r.stderr
    r = grm(env, "pull", "hf://nobody/nothing/x.gguf")
    assert r.returncode == 3 and "hf://nobody/nothing/x.gguf" in r.stderr and "Traceback" not in r.stderr


def test_user_alias(hub, tmp_path):
    endpoint, _ = hub
    aliases = tmp_path / "models.yaml"
    aliases.write_text("my-judge:\n  source: hf://owner/judge/tiny.gguf\n  description: test judge\n")
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "GRM_MODELS": str(aliases)}
    listing = json.loads(grm(env, "models", "--json").stdout)
    assert {"name": "my-judge", "source": "hf://owner/judge/tiny.gguf", "description": "test judge", "from": str(aliases)} in listing["aliases"]
    q = grm(env, "score", "-", "--model", "my-judge", "--ctx", "8192", "--max-tokens", "4", "--json", stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert q.returncode == 0, q.stderr
    r = grm(env, "score", "-", "--model", "no-such-alias", stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert r.returncode == 3 and "my-judge" in r.stderr and "smollm2-135m" in r.stderr
