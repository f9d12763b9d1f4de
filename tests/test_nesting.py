"""Pathological JSON: nesting that would blow Python's recursion limit is a located input error everywhere."""

from __future__ import annotations

import pytest
from conftest import grm

from grm_cli.errors import InputError
from grm_cli.io.jsonl import MAX_JSON_DEPTH, JSONTooDeep, json_lines, loads_bounded

DEEP = "[" * 5000 + "]" * 5000


def test_bounded_loads_refuses_depth_past_the_limit_and_accepts_it_at_the_limit():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_bounded(at_limit) is not None
    for text in ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), DEEP, '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(JSONTooDeep):
            loads_bounded(text)


def test_a_deep_line_is_located_and_skippable():
    text = '{"prompt": "q", "responses": ["a", "b"]}\n' + '{"prompt": ' + DEEP + "}\n"
    with pytest.raises(InputError, match=r"^deep\.jsonl:2: JSON nested deeper than"):
        list(json_lines(text, "deep.jsonl"))
    errors: list = []
    assert [n for n, _ in json_lines(text, "deep.jsonl", errors=errors)] == [1]
    assert len(errors) == 1 and errors[0].line == 2


def test_grm_score_on_a_deep_line_exits_2_with_file_and_line(tmp_path, tiny_model):
    data = tmp_path / "deep.jsonl"
    data.write_text('{"prompt": "q", "responses": ["a", "b"]}\n' + DEEP + "\n")
    p = grm("score", data, "--model", tiny_model, "--max-tokens", "4")
    assert p.returncode == 2, p.stderr
    assert f"{data}:2: JSON nested deeper than {MAX_JSON_DEPTH} levels" in p.stderr
    assert "Traceback" not in p.stderr
