"""hf://datasets/OWNER/NAME[@REV]/PATH for grm eval --benchmark, against a local server speaking the hub's
protocol (huggingface-hub itself downloads; only the network end is local), and offline from its cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from local_hub import serve_repo

from grm_cli.errors import InputError
from grm_cli.evaluation.benchmarks.files import parse_hf_dataset

FIX = Path(__file__).parent / "fixtures" / "benchmarks"
COMMIT = "da7a" + "0" * 36
FILES = {
    "data/judgebench.jsonl": (FIX / "judgebench.jsonl").read_bytes(),
    "RMB_dataset/Pairwise_set/Harmlessness/S1.json": (FIX / "rmb/Pairwise_set/Harmlessness/S1.json").read_bytes(),
    "RMB_dataset/BoN_set/Harmlessness/S1.json": (FIX / "rmb/BoN_set/Harmlessness/S1.json").read_bytes(),
}


@pytest.fixture
def hub():
    """A local hub serving the dataset repo owner/bench; records every file GET."""
    with serve_repo("owner/bench", FILES, COMMIT, kind="datasets") as served:
        yield served


LOAD = "import sys; from grm_cli.evaluation import benchmarks as bm; d = bm.load(bm.local_path(sys.argv[1])); print(d.name, [r.id for r in d.records])"


def load(env, spec):
    # a child process: huggingface-hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported
    return subprocess.run([sys.executable, "-c", LOAD, spec], capture_output=True, text=True, timeout=120,
                          env={"HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin", **env})


def test_parse_hf_dataset():
    assert parse_hf_dataset("hf://datasets/owner/bench/data/x.jsonl") == ("owner/bench", None, "data/x.jsonl")
    assert parse_hf_dataset("hf://datasets/owner/bench@v2/RMB_dataset/") == ("owner/bench", "v2", "RMB_dataset")
    for bad in ("hf://owner/bench/x.jsonl", "hf://datasets/owner/bench", "hf://datasets/owner"):
        with pytest.raises(InputError, match="hf://datasets/OWNER/NAME/PATH"):
            parse_hf_dataset(bad)


def test_a_file_and_a_folder_from_the_hub_then_offline(hub, tmp_path):
    endpoint, gets = hub
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
    p = load(env, "hf://datasets/owner/bench/data/judgebench.jsonl")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("judgebench ['p1:AB', 'p1:BA'") and gets == ["data/judgebench.jsonl"]
    p = load(env, "hf://datasets/owner/bench/RMB_dataset")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("rmb ") and "'bon:3294'" in p.stdout and "'pairwise:15091'" in p.stdout
    assert sorted(gets[1:]) == sorted(f for f in FILES if f.startswith("RMB_dataset/"))  # only the folder asked for
    # offline: the cache answers; what it lacks is a clear message
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    p = load(offline, "hf://datasets/owner/bench/data/judgebench.jsonl")
    assert p.returncode == 0 and p.stdout.startswith("judgebench") and len(gets) == 3  # nothing downloaded again
    p = load(offline, "hf://datasets/owner/bench/data/other.jsonl")
    assert p.returncode != 0 and "offline (HF_HUB_OFFLINE is set) and not in the hub cache" in p.stderr


@pytest.mark.slow
def test_cli_missing_dataset_file_is_exit_3(hub, tmp_path):
    endpoint, _ = hub
    env = {"HF_HUB_DISABLE_TELEMETRY": "1", "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    grm = Path(sys.executable).with_name("grm")
    p = subprocess.run([str(grm), "eval", "hf://datasets/owner/bench/data/absent.jsonl"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 3 and "hf://datasets/owner/bench/data/absent.jsonl: no such file" in p.stderr and "Traceback" not in p.stderr
