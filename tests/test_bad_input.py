"""Every kind of bad input: a located message and exit 2, nothing written lost; or, with --skip-invalid,
a line in the errors file while the good records are scored."""

from __future__ import annotations

import json

import pytest
from conftest import grm

GOOD = {"id": "good", "prompt": "2+2?", "responses": ["4", "5"], "preferred": 0}
HUGE = "lorem ipsum " * 2500  # about 30,000 characters: far over a 2048-token context

CASES = [
    ("invalid JSON", [json.dumps(GOOD), '{"prompt": "q", "responses": ["a",'], 2, "invalid JSON"),
    ("wrong type", [json.dumps(GOOD), json.dumps({"prompt": "q", "responses": "a"})], 2, 'field "responses": expected a list'),
    ("missing field", [json.dumps(GOOD), json.dumps({"responses": ["a", "b"]})], 2, 'missing field "prompt"'),
    ("duplicate id", [json.dumps(GOOD), json.dumps(GOOD)], 2, "duplicate id 'good'"),
    ("empty response", [json.dumps(GOOD), json.dumps({"prompt": "q", "responses": ["a", " "]})], 2, "response is empty"),
    ("too many responses", [json.dumps(GOOD), json.dumps({"prompt": "q", "responses": [str(i) for i in range(17)]})], 2, "at most 16"),
    ("over the context", [json.dumps(GOOD), json.dumps({"prompt": "q", "responses": [HUGE, "b"]})], 2, "--on-long truncate"),
    ("lone surrogate", [json.dumps(GOOD), '{"prompt": "caf\\ud800e", "responses": ["a", "b"]}'], 2, 'field "prompt": holds a lone surrogate'),
    ("lone surrogate with an id", [json.dumps(GOOD), '{"id": "s", "prompt": "q", "responses": ["a", "b\\udfff"]}'], 2, 'field "responses[1]": holds a lone surrogate'),
]


@pytest.fixture
def base(tiny_model, short_template):
    return ["--model", str(tiny_model), "--ctx", "2048", "--template", str(short_template), "--max-tokens", "8"]


@pytest.mark.parametrize("name, lines, line_no, words", CASES, ids=[c[0] for c in CASES])
def test_bad_record_is_located_and_nothing_written_is_lost(tmp_path, base, name, lines, line_no, words):
    out = tmp_path / "out.jsonl"
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps(GOOD) + "\n")
    assert grm("score", str(ok), *base, "-o", str(out)).returncode == 0
    before = out.read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    p = grm("score", str(bad), *base, "-o", str(out))
    assert p.returncode == 2, p.stderr
    assert f"{bad}:{line_no}:" in p.stderr and words in p.stderr and "Traceback" not in p.stderr
    assert out.read_bytes() == before


def test_invalid_utf8_is_located(tmp_path, base):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"prompt": "caf\xe9", "responses": ["a", "b"]}\n')
    p = grm("score", str(bad), *base)
    assert p.returncode == 2 and f"{bad}:2:" in p.stderr and "UTF-8" in p.stderr


def test_template_that_takes_fewer_responses(tmp_path, base):
    p = grm("score", "-", *base[:-4], "--template", "single", stdin=json.dumps(GOOD) + "\n")
    assert p.returncode == 2 and "<stdin>:1:" in p.stderr and 'template "single" takes exactly 1' in p.stderr


def test_skip_invalid_lists_every_bad_line_and_scores_the_rest(tmp_path, base):
    rows = [json.dumps(GOOD), "not json", json.dumps({"prompt": "q"}), json.dumps({"id": "g2", "prompt": "1+1?", "responses": ["2", "3"]})]
    data = tmp_path / "d.jsonl"
    data.write_bytes(("\n".join(rows) + "\n").encode() + b'{"prompt": "\xff"}\n')
    out = tmp_path / "out.jsonl"
    p = grm("score", str(data), *base, "-o", str(out), "--skip-invalid")
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["good", "g2"]
    errors = [json.loads(x) for x in (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()]
    assert [(e["source"], e["line"]) for e in errors] == [(str(data), 2), (str(data), 3), (str(data), 5)]
    assert "invalid JSON" in errors[0]["error"] and "no responses" in errors[1]["error"] and "UTF-8" in errors[2]["error"]
    assert "3 invalid records skipped" in p.stderr


def test_truncate_policy_cuts_the_middle_and_marks_it(tmp_path, base):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "long", "prompt": "Summarize.", "responses": ["START " + HUGE + " END", "short"]}) + "\n")
    out = tmp_path / "out.jsonl"
    p = grm("score", str(data), *base, "-o", str(out), "--on-long", "truncate")
    assert p.returncode == 0, p.stderr
    assert "responses 0 were cut in the middle" in p.stderr
    r = json.loads(out.read_text())
    assert r["truncated_responses"] == [0] and r["votes"] == 1
    assert r["input"]["responses"][0].startswith("START ")  # the input is echoed as given
    assert r["samples"][0]["prompt_tokens"] + 8 < 2048


def test_an_endless_stream_is_refused_at_its_first_long_line(base):
    """/dev/zero has no newline: it is refused once a line passes the bound, not read until MemoryError."""
    p = grm("score", "/dev/zero", *base)
    assert p.returncode == 2 and "/dev/zero:1: line 1 is longer than 4 MiB" in p.stderr and "Traceback" not in p.stderr


def test_a_huge_line_is_refused_before_it_is_parsed_or_tokenized(tmp_path, base):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps(GOOD) + "\n" + json.dumps({"prompt": "q", "responses": ["x" * (5 << 20), "b"]}) + "\n")
    p = grm("score", str(big), *base)
    assert p.returncode == 2 and f"{big}:2: line 2 is longer than 4 MiB" in p.stderr


@pytest.mark.parametrize("how", ["same path", "./ path", "symlink"])
def test_output_naming_the_input_is_refused_whatever_the_flags(tmp_path, base, monkeypatch, how):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps(GOOD) + "\n")
    before = data.read_bytes()
    out = {"same path": str(data), "./ path": "./data.jsonl", "symlink": str(tmp_path / "link.jsonl")}[how]
    if how == "symlink":
        (tmp_path / "link.jsonl").symlink_to(data)
    monkeypatch.chdir(tmp_path)
    for cmd in ("score", "eval"):
        p = grm(cmd, str(data), *base, "-o", out, "--force")
        assert p.returncode == 2 and "--output is the input file" in p.stderr, p.stderr
    assert data.read_bytes() == before


def test_a_file_size_limit_is_one_line_and_exit_5(tmp_path, tiny_model, short_template):
    """The environment refusing a write (here RLIMIT_FSIZE; a full disk the same) is not a traceback."""
    import resource
    import signal
    import subprocess
    import sys

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({**GOOD, "id": f"r{i}"}) + "\n" for i in range(4)))
    out = tmp_path / "out.jsonl"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as a shell with `ulimit -f` leaves it: the write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    p = subprocess.run([sys.executable, "-m", "grm_cli", "score", str(data), "--model", str(tiny_model), "--ctx", "2048", "--template", str(short_template),
                        "--max-tokens", "8", "-o", str(out), "--no-cache"], capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert p.returncode == 5, p.stderr
    assert "cannot write" in p.stderr and "File too large" in p.stderr and "Traceback" not in p.stderr


def test_a_boolean_where_a_number_goes_in_a_settings_file(tmp_path, base, monkeypatch):
    (tmp_path / "grm.yaml").write_text("samples: true\n")
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(GOOD) + "\n")
    p = grm("score", str(data), *base)
    assert p.returncode == 2 and '"samples": expected a number, got true' in p.stderr, p.stderr
