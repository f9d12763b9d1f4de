"""What a newcomer's trial turned up: literal text in tables, single-response labels, flags llama.cpp
would crash on, corrupt models in doctor, plot paths, closed pipes, principles that match no record."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import grm

from grm_cli.core.prompt import load_template
from grm_cli.core.records import record_from_dict
from grm_cli.core.rules import is_correct
from grm_cli.errors import InputError
from grm_cli.scoring.pipeline import score_record
from grm_cli.scoring.settings import ScoreSettings


def test_square_brackets_in_data_are_shown_literally(tiny_model, short_template):
    rec = {"id": "[/x]", "prompt": "What permissions does [/etc/passwd] have? print(arr[i]) [bold]", "responses": ["[/]", "arr[b]"]}
    p = grm("score", "-", "--model", str(tiny_model), "--ctx", "2048", "--template", str(short_template), "--max-tokens", "4", stdin=json.dumps(rec) + "\n")
    assert p.returncode == 0, p.stderr
    assert "[/x]" in p.stdout and "[/etc/passwd]" in p.stdout and "arr[b]" in p.stdout and "[/]" in p.stdout
    q = grm("principles", "-", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "4", stdin="Explain [/etc/passwd] and [red]x[/red].\n")
    assert q.returncode in (0, 4) and "Traceback" not in q.stderr and "[/etc/passwd]" in q.stdout


def test_single_response_labels(tiny_engine):
    single = load_template("single")
    for label in (0, 1):
        rec = record_from_dict({"prompt": "2+2?", "completion": "4", "label": bool(label)})
        r = score_record(rec, tiny_engine, single, ScoreSettings(k=5, temperature=0.8, max_tokens=4))
        right = sum(is_correct(s.scores, label) for s in r.samples)
        assert r.correct == (2 * right > 5)
        assert r.to_json()["label"] == label
    with pytest.raises(InputError, match='give "label"'):
        record_from_dict({"prompt": "q", "responses": ["a"], "preferred": 0})
    with pytest.raises(InputError, match='with 2 responses give "preferred"'):
        record_from_dict({"prompt": "q", "responses": ["a", "b"], "label": 1})
    with pytest.raises(InputError, match="true/false or 1/0"):
        record_from_dict({"prompt": "q", "completion": "a", "label": 7})


def test_label_needs_the_single_template(tiny_model):
    p = grm("score", "-", "--model", str(tiny_model), "--ctx", "8192", stdin='{"prompt": "q", "completion": "a", "label": true}\n')
    assert p.returncode == 2 and "<stdin>:1:" in p.stderr and "--template single" in p.stderr


@pytest.mark.parametrize("flags, words", [
    (["--temperature", "nan"], "--temperature nan"),
    (["--temperature", "inf"], "--temperature inf"),
    (["--threads", "0"], "--threads 0"),
    (["--n-gpu-layers", "-5"], "--n-gpu-layers '-5'"),
    (["--on-long", "squeeze"], "--on-long 'squeeze'"),
])
def test_flags_llama_cpp_would_crash_on_are_refused(tiny_model, flags, words):
    p = grm("score", "-", "--model", str(tiny_model), *flags, stdin='{"prompt": "q", "responses": ["a", "b"]}\n')
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr


def test_principles_rejects_a_negative_temperature(tiny_model):
    p = grm("principles", "-", "--model", str(tiny_model), "--temperature", "-1", stdin="q\n")
    assert p.returncode == 2 and "--temperature -1.0" in p.stderr


def test_doctor_on_a_truncated_model_is_exit_3(tiny_model, tmp_path):
    bad = tmp_path / "partial.gguf"
    bad.write_bytes(tiny_model.read_bytes()[:50_000])
    p = grm("doctor", "--model", str(bad))
    assert p.returncode == 3 and "cannot read the GGUF header" in p.stderr and "Traceback" not in p.stderr


def test_plot_path_is_checked_before_any_work(tmp_path):
    from conftest import ROOT

    runs = str(ROOT / "examples" / "runs" / "hhh_smollm2_k4.jsonl")
    p = grm("eval", runs, "--plot", str(tmp_path / "curve.txt"))
    assert p.returncode == 2 and "image format" in p.stderr and p.stdout == ""
    p = grm("eval", runs, "--plot", str(tmp_path))
    assert p.returncode == 2 and "is a directory" in p.stderr


def test_closed_pipe_is_a_quiet_success(tiny_model):
    from conftest import EXAMPLES

    cmd = f"{sys.executable} -m grm_cli.cli score {EXAMPLES / 'llmbar.jsonl'} --model {tiny_model} --ctx 8192 --max-tokens 4 --json | head -1"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["id"] == "llmbar-Neighbor-76" and "Traceback" not in p.stderr


def test_saved_principles_with_an_id_apply_only_to_that_record(tiny_model, tmp_path):
    saved = tmp_path / "p.jsonl"
    saved.write_text(json.dumps({"id": "other", "prompt": "another question", "principles": "Be brief."}) + "\n")
    p = grm("score", "-", "--model", str(tiny_model), "--ctx", "8192", "--principles", str(saved),
            stdin='{"id": "mine", "prompt": "q", "responses": ["a", "b"]}\n')
    assert p.returncode == 2 and "no principles for record id 'mine'" in p.stderr
