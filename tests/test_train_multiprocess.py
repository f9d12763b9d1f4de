"""The multi-process path for real: `accelerate launch --multi_gpu --num_processes 2 -m grm_cli train rft|rl`
on the tiny model, on the CPU (without CUDA the process group is gloo). Both processes join the trainer,
only rank 0 writes and logs, and the adapter has the shapes of a one-process run's and runs in llama.cpp.

`--cpu --num_processes 2` is not the way: accelerate then starts one process (its multi-CPU mode needs an
MPI hostfile); `--multi_gpu` on a machine without GPUs starts torch's launcher with the gloo backend."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import llama_logits

from grm_cli.core.prompt import load_template
from grm_cli.train.run_dir import RunDir
from grm_cli.train.settings import load_settings
from grm_cli.train.stages import fit_rft

MISSING = [m for m in ("torch", "peft", "trl", "accelerate") if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install 'grm-cli[train]')")]

# Every flag given, so that no accelerate config file of the user's is read and nothing prompts.
# CUDA hidden: the two processes share the CPU even where a GPU is present.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--main_process_port", "0", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "grm_cli"]


def launch(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # two processes on two cores
    p = subprocess.run([*LAUNCH, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, f"accelerate launch ... {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-4000:]}"
    return p


def logs(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def shapes(adapter: Path) -> dict[str, tuple]:
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "np") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def test_two_processes_train_rft_then_rl_and_only_rank_0_writes(tiny_model, arith, clean_rft, short_template, tmp_path):
    rft = tmp_path / "rft"
    p = launch("train", "rft", arith, "-m", tiny_model, "-t", short_template, "-o", rft, "--accepted", clean_rft,
               "--steps", 3, "--batch", 4, "--lora-rank", 4, "--lr", "1e-2")
    assert p.stderr.count("fitting a LoRA") == 1 and p.stderr.count("\nadapter: ") == 1  # rank 0 tells it once
    lines = logs(rft)
    assert [m["processes"] for m in lines if m.get("event") == "start"] == [2]  # both joined the process group
    assert [m["step"] for m in lines if "loss" in m] == [1, 2, 3]  # one line per step: rank 1 wrote nothing
    assert sorted(x.name for x in rft.iterdir()) == ["adapter", "adapter.gguf", "checkpoints", "metrics.jsonl", "settings.yaml"]

    # the same adapter shapes as a one-process run with the same settings
    one = RunDir(tmp_path / "one")
    fit_rft(str(tiny_model), clean_rft, one, load_settings("rft", None, {"steps": 1, "batch": 4, "lora_rank": 4}), load_template(str(short_template)))
    assert shapes(rft / "adapter") == shapes(one.adapter) and shapes(one.adapter)

    # and llama.cpp runs it
    base, _ = llama_logits(tiny_model, None)
    tuned, _ = llama_logits(tiny_model, rft / "adapter.gguf")
    assert np.isfinite(tuned).all() and np.abs(tuned - base).max() > 1e-4

    rl = tmp_path / "rl"
    p = launch("train", "rl", arith, "-m", tiny_model, "-t", short_template, "--adapter", rft / "adapter", "-o", rl,
               "--steps", 2, "--batch", 4, "--group", 4, "--max-completion", 16, "--lora-rank", 4, "--lr", "1e-2")
    assert p.stderr.count("\nadapter: ") == 1
    lines = logs(rl)
    assert [m["processes"] for m in lines if m.get("event") == "start"] == [2]
    steps = [m for m in lines if "reward" in m]
    assert [m["step"] for m in steps] == [1, 2] and all(-1.0 <= m["reward"] <= 1.0 for m in steps)
    done = [m for m in lines if m.get("event") == "done"]
    assert len(done) == 1
    tuned_rl, _ = llama_logits(tiny_model, rl / "adapter.gguf")  # RFT + RL in one llama.cpp adapter
    assert np.isfinite(tuned_rl).all() and np.abs(tuned_rl - tuned).max() > 0
