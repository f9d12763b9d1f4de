"""The `grm` command as users and scripts run it: `main(argv)` in-process (same exit codes and streams), real llama.cpp, the tiny model."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLES, grm, write_jsonl


def test_score_json_is_one_clean_line_per_record(tiny_model):
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "-k", "2", "--max-tokens", "8", "--json")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    expected = [json.loads(line)["id"] for line in (EXAMPLES / "llmbar.jsonl").read_text().splitlines()]
    assert ids == expected
    first = json.loads(lines[0])
    assert first["run"]["k"] == 2 and first["run"]["temperature"] == 0.5
    assert len(first["samples"]) == 2 and first["input"]["id"] == expected[0]
    assert isinstance(first["correct"], bool)


def test_stdin_trl_pairs_and_output_file(tiny_model, tmp_path):
    out = tmp_path / "res.jsonl"
    pairs = (EXAMPLES / "hhh_pairs.jsonl").read_text()
    p = grm("score", "-", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8", "--output", str(out), stdin=pairs)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["preferred"] == 0 and r["n"] == 2 for r in rows)
    assert "tie" in p.stdout or "best: response" in p.stdout  # the rich tables went to the terminal
    # A finished result file is never overwritten by accident: another run's settings are refused...
    before = out.read_text()
    again = grm("score", "-", "--model", str(tiny_model), "--ctx", "8192", "--output", str(out), stdin=pairs)
    assert again.returncode == 2 and "different run (max_tokens: 8 there, 512 now)" in again.stderr and "--force" in again.stderr
    assert out.read_text() == before
    # ...and the same command resumes: nothing left to do, nothing rewritten.
    same = grm("score", "-", "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8", "--output", str(out), stdin=pairs)
    assert same.returncode == 0 and "skipping 4 records already in" in same.stderr
    assert out.read_text() == before


@pytest.mark.parametrize(
    "lines, where, words",
    [
        (['{"prompt": "hi", "responses": ["a", "b"]}', '{"prompt": "hi", "responses": ["a"', ""], ":2:", "invalid JSON"),
        (['{"prompt": "hi", "responses": []}'], ":1:", "no responses"),
        (['{"prompt": 5, "responses": ["a"]}'], ":1:", '"prompt"'),
        (['{"prompt": "q", "responses": ["a", "b"], "preferred": 2}'], ":1:", '"preferred"'),
        (['{"prompt": "q", "chosen": "a"}'], ":1:", '"rejected"'),
        (['["not", "an", "object"]'], ":1:", "JSON object"),
    ],
)
def test_bad_input_is_one_located_line_and_exit_2(tiny_model, tmp_path, lines, where, words):
    f = write_jsonl(tmp_path / "bad.jsonl", lines)
    out = tmp_path / "never.jsonl"
    p = grm("score", str(f), "--model", str(tiny_model), "--output", str(out))
    assert p.returncode == 2
    assert f"{f}{where}" in p.stderr and words in p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_prompt_longer_than_context_fails_before_any_work(tiny_model, tmp_path):
    f = write_jsonl(tmp_path / "long.jsonl", [{"prompt": "short", "responses": ["a", "b"]}, {"prompt": "word " * 3000, "responses": ["a", "b"]}])
    out = tmp_path / "out.jsonl"
    p = grm("score", str(f), "--model", str(tiny_model), "--ctx", "8192", "--output", str(out))
    assert p.returncode == 2 and f"{f}:2:" in p.stderr and "--ctx" in p.stderr
    assert not out.exists()


def test_missing_and_broken_models_exit_3(tmp_path):
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tmp_path / "nope.gguf"))
    assert p.returncode == 3 and "no such model file" in p.stderr
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(fake))
    assert p.returncode == 3 and "not a GGUF file" in p.stderr and "Traceback" not in p.stderr


def test_missing_input_file_and_bad_flags_exit_2(tiny_model, tmp_path):
    p = grm("score", str(tmp_path / "missing.jsonl"), "--model", str(tiny_model))
    assert p.returncode == 2 and "no such file" in p.stderr
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "-k", "0")
    assert p.returncode == 2 and "--samples" in p.stderr
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--template", "nosuch")
    assert p.returncode == 2 and "unknown template" in p.stderr


def test_free_mode_with_unparseable_model_exits_4_and_keeps_raw_text(tiny_model, tmp_path):
    out = tmp_path / "free.jsonl"
    p = grm("score", str(EXAMPLES / "hhh_pairs.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8", "--free", "--output", str(out))
    assert p.returncode == 4
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert r["scores"] is None and r["best"] is None and r["unparsed"] == 1
        assert r["samples"][0]["parse_error"] and r["samples"][0]["text"] is not None


def test_principles_file_feeds_score(tiny_model, tmp_path):
    principles = tmp_path / "p.txt"
    principles.write_text("Factual accuracy (Weight: 80%)\nPoliteness (Weight: 20%)\n")
    out = tmp_path / "out.jsonl"
    p = grm("score", str(EXAMPLES / "hhh_pairs.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "--max-tokens", "8", "--principles", str(principles), "--output", str(out))
    assert p.returncode == 0, p.stderr
    for r in (json.loads(x) for x in out.read_text().splitlines()):
        assert r["given_principles"].startswith("Factual accuracy")
        assert r["samples"][0]["criteria"] == [{"text": "Factual accuracy", "weight": 80.0}, {"text": "Politeness", "weight": 20.0}]


@pytest.mark.parametrize("command", [[], ["score"], ["principles"], ["templates"]])
def test_help_shows_examples(command):
    p = grm(*command, "--help")
    assert p.returncode == 0 and "Example" in p.stdout and "grm " in p.stdout


def test_templates_lists_the_shipped_four():
    p = grm("templates")
    assert p.returncode == 0
    assert [line.split()[0] for line in p.stdout.splitlines()] == ["compact", "judge", "pointwise", "single"]


def test_speed_is_reported_on_stderr_and_next_to_the_output(tiny_model, tmp_path):
    out = tmp_path / "res.jsonl"
    p = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "-k", "2", "--max-tokens", "8", "--no-cache", "-o", str(out))
    assert p.returncode in (0, 4), p.stderr
    assert "speed: 8 records, 16 samples generated in" in p.stderr and "tok/s" in p.stderr
    (line,) = [json.loads(x) for x in (tmp_path / "res.jsonl.runs.jsonl").read_text().splitlines()]
    assert line["records"] == 8 and line["requests"] == 16
    assert 0 < line["prompt_evaluated"] < line["prompt_tokens"]  # the shared instruction is evaluated once
    assert line["generated_tokens"] > 0 and line["generated_tokens_per_second"] > 0 and line["prompt_tokens_per_second"] > 0
    again = grm("score", str(EXAMPLES / "llmbar.jsonl"), "--model", str(tiny_model), "--ctx", "8192", "-k", "2", "--max-tokens", "8", "--no-cache", "-o", str(out))
    assert again.returncode == 0 and "speed:" not in again.stderr  # resumed: nothing generated, nothing to report
