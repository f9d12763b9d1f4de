"""Unit tests for grm_cli/records.py: every accepted input format and every located input error."""

from __future__ import annotations

import io
import json
import sys

import pytest

from grm_cli.core.records import MAX_RESPONSES, Record, Turn, content_key, record_from_dict
from grm_cli.errors import ExitCode, InputError
from grm_cli.io.jsonl import looks_like_jsonl, read_prompts, read_records
from grm_cli.io.principles_file import read_principles


def write_jsonl(tmp_path, objs, name="data.jsonl"):
    """Write one line per item: dicts/lists are JSON-encoded, strings are written raw."""
    path = tmp_path / name
    lines = [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def read_error(tmp_path, objs, **kw) -> InputError:
    path = write_jsonl(tmp_path, objs)
    with pytest.raises(InputError) as exc:
        read_records(path, **kw)
    return exc.value


def set_stdin(monkeypatch, data: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


GOOD = {"prompt": "What is 2+2?", "responses": ["4", "5"]}


# ---------------------------------------------------------------- accepted formats


def test_prompt_and_responses(tmp_path):
    path = write_jsonl(tmp_path, [GOOD])
    (rec,) = read_records(path)
    assert isinstance(rec, Record)
    assert rec.context == (Turn("user", "What is 2+2?"),)
    assert rec.query == "What is 2+2?"
    assert rec.responses == ("4", "5")
    assert rec.preferred is None and rec.subset is None and rec.principles is None
    assert rec.source == path and rec.line == 1
    assert rec.where == f"{path}:1"
    assert rec.raw == GOOD
    assert rec.id == content_key(rec.context, rec.responses)
    assert rec.id.startswith("sha256:") and len(rec.id) == len("sha256:") + 16


def test_optional_fields(tmp_path):
    obj = {**GOOD, "id": "q-7", "preferred": 1, "subset": "math", "principles": "Be exact (Weight: 100%)"}
    (rec,) = read_records(write_jsonl(tmp_path, [obj]))
    assert rec.id == "q-7"
    assert rec.preferred == 1
    assert rec.subset == "math"
    assert rec.principles == "Be exact (Weight: 100%)"


def test_integer_id_becomes_string(tmp_path):
    (rec,) = read_records(write_jsonl(tmp_path, [{**GOOD, "id": 42}]))
    assert rec.id == "42"


def test_principles_list_is_joined(tmp_path):
    (rec,) = read_records(write_jsonl(tmp_path, [{**GOOD, "principles": ["Accuracy (Weight: 60%)", "Clarity (Weight: 40%)"]}]))
    assert rec.principles == "Accuracy (Weight: 60%)\nClarity (Weight: 40%)"


def test_trl_chosen_rejected(tmp_path):
    (rec,) = read_records(write_jsonl(tmp_path, [{"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}]))
    assert rec.responses == ("Hi!", "No.")
    assert rec.preferred == 0


def test_trl_conversational_chosen_rejected(tmp_path):
    obj = {
        "prompt": [{"role": "user", "content": "Capital of France?"}],
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Lyon."}],
    }
    (rec,) = read_records(write_jsonl(tmp_path, [obj]))
    assert rec.context == (Turn("user", "Capital of France?"),)
    assert rec.responses == ("Paris.", "Lyon.")
    assert rec.preferred == 0


def test_trl_implicit_prompt_message_lists_use_last_assistant_turn(tmp_path):
    # TRL's "implicit prompt" completions repeat the user turn; the assistant turn is the response.
    obj = {
        "prompt": "Capital of France?",
        "chosen": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Nice."}],
    }
    (rec,) = read_records(write_jsonl(tmp_path, [obj]))
    assert rec.responses == ("Paris.", "Nice.")


def test_messages_conversation_cut_after_last_user_turn(tmp_path):
    obj = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "What is 3*3?"},
            {"role": "assistant", "content": "9 (this turn is cut)"},
        ],
        "responses": ["9", "6"],
    }
    (rec,) = read_records(write_jsonl(tmp_path, [obj]))
    assert rec.context == (
        Turn("system", "Be brief."),
        Turn("user", "Hi"),
        Turn("assistant", "Hello!"),
        Turn("user", "What is 3*3?"),
    )
    assert rec.query == "What is 3*3?"
    assert all("cut" not in t.content for t in rec.context)


def test_prompt_as_message_list(tmp_path):
    obj = {
        "prompt": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Red."},
            {"role": "user", "content": "Another?"},
        ],
        "responses": ["Blue.", "Red."],
        "preferred": 0,
    }
    (rec,) = read_records(write_jsonl(tmp_path, [obj]))
    assert len(rec.context) == 3
    assert rec.query == "Another?"
    assert rec.preferred == 0


def test_many_records_line_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n   \n" + json.dumps({**GOOD, "prompt": "Other"}) + "\n", encoding="utf-8")
    recs = read_records(str(path))
    assert [r.line for r in recs] == [1, 4]
    assert recs[0].id != recs[1].id


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes((json.dumps(GOOD) + "\r\n" + json.dumps({**GOOD, "id": "b"}) + "\r\n").encode())
    recs = read_records(str(path))
    assert [r.line for r in recs] == [1, 2]
    assert recs[1].id == "b"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    (rec,) = read_records(str(path))
    assert rec.responses == ("4", "5")


def test_unicode_line_separator_inside_a_string(tmp_path):
    # json.dumps(ensure_ascii=False) leaves U+2028/U+2029/U+0085 raw: they are not line breaks in JSONL.
    obj = {"prompt": "a\u2028b\u2029c\x85d", "responses": ["é\u2028ü", "ok"]}
    rec, nxt = read_records(write_jsonl(tmp_path, [obj, {**GOOD, "id": "next"}]))
    assert rec.query == "a\u2028b\u2029c\x85d"
    assert rec.responses[0] == "é\u2028ü"
    assert (nxt.id, nxt.line) == ("next", 2)


def test_no_responses_allowed_when_not_needed():
    rec = record_from_dict({"prompt": "Only a question"}, "x.jsonl", 3, need_responses=False)
    assert rec.responses == ()
    assert rec.where == "x.jsonl:3"


def test_max_responses_boundary():
    ok = record_from_dict({"prompt": "q", "responses": [f"r{i}" for i in range(MAX_RESPONSES)]})
    assert len(ok.responses) == MAX_RESPONSES
    with pytest.raises(InputError, match=r'"responses"'):
        record_from_dict({"prompt": "q", "responses": [f"r{i}" for i in range(MAX_RESPONSES + 1)]})


def test_content_key_is_stable_and_sensitive():
    ctx = (Turn("user", "q"),)
    assert content_key(ctx, ("a", "b")) == content_key(ctx, ("a", "b"))
    assert content_key(ctx, ("a", "b")) != content_key(ctx, ("b", "a"))
    assert content_key(ctx, ("ab",)) != content_key(ctx, ("a", "b"))
    assert content_key((Turn("system", "q"),), ("a",)) != content_key(ctx, ("a",))


# ---------------------------------------------------------------- located errors


@pytest.mark.parametrize(
    "line, field_text",
    [
        ('{"prompt": "q", "responses": ["a",]}', "invalid JSON"),
        ("not json at all", "invalid JSON"),
        ('["prompt", "responses"]', "expected a JSON object, got array"),
        ('"just a string"', "expected a JSON object, got string"),
        ("42", "expected a JSON object, got number"),
        ({"responses": ["a", "b"]}, 'missing field "prompt"'),
        ({"prompt": "   ", "responses": ["a"]}, 'field "prompt": is empty'),
        ({"prompt": 5, "responses": ["a"]}, 'field "prompt": expected a string or a list of messages, got number'),
        ({"prompt": None, "responses": ["a"]}, 'field "prompt"'),
        ({"prompt": [], "responses": ["a"]}, 'field "prompt": expected a non-empty list'),
        ({"prompt": [{"role": "user"}], "responses": ["a"]}, 'field "prompt[0]"'),
        ({"prompt": ["hi"], "responses": ["a"]}, 'field "prompt[0]"'),
        ({"prompt": [{"role": "assistant", "content": "x"}], "responses": ["a"]}, 'field "prompt": the conversation has no "user" turn'),
        ({"prompt": [{"role": "user", "content": " "}], "responses": ["a"]}, 'field "prompt": the last user turn is empty'),
        ({"messages": "hello", "responses": ["a"]}, 'field "messages"'),
        ({"messages": [{"role": "system", "content": "s"}], "responses": ["a"]}, 'field "messages": the conversation has no "user" turn'),
        ({"messages": [{"role": "user", "content": 3}], "responses": ["a"]}, 'field "messages[0]"'),
        ({"prompt": "q", "responses": "a"}, 'field "responses": expected a list of strings, got string'),
        ({"prompt": "q", "responses": {"a": 1}}, 'field "responses": expected a list of strings, got object'),
        ({"prompt": "q", "responses": []}, '"responses"'),
        ({"prompt": "q"}, "no responses to judge"),
        ({"prompt": "q", "responses": ["a", 7]}, 'field "responses[1]": expected a string, got number'),
        ({"prompt": "q", "responses": ["a", ""]}, 'field "responses[1]": response is empty'),
        ({"prompt": "q", "responses": ["  \n"]}, 'field "responses[0]": response is empty'),
        ({"prompt": "q", "responses": ["a"], "chosen": "b", "rejected": "c"}, 'either "responses" or "chosen"/"rejected"'),
        ({"prompt": "q", "chosen": "b"}, 'field "rejected" is missing'),
        ({"prompt": "q", "rejected": "b"}, 'field "chosen" is missing'),
        ({"prompt": "q", "chosen": "", "rejected": "b"}, 'field "chosen": response is empty'),
        ({"prompt": "q", "chosen": 1, "rejected": "b"}, 'field "chosen": expected a string, got number'),
        ({"prompt": "q", "chosen": "a", "rejected": [{"role": "user", "content": "x"}]}, 'field "rejected": a message list must contain an "assistant" turn'),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "preferred": 1}, 'field "preferred": not allowed with "chosen"/"rejected"'),
        ({**GOOD, "preferred": 2}, 'field "preferred": 2 is out of range for 2 responses'),
        ({**GOOD, "preferred": -1}, 'field "preferred": -1 is out of range'),
        ({**GOOD, "preferred": True}, 'field "preferred": expected an integer index, got true'),
        ({**GOOD, "preferred": "0"}, 'field "preferred": expected an integer index, got "0"'),
        ({**GOOD, "preferred": 1.0}, 'field "preferred": expected an integer index, got 1.0'),
        ({**GOOD, "id": True}, 'field "id": expected a string or integer, got true'),
        ({**GOOD, "id": [1]}, 'field "id": expected a string or integer'),
        ({**GOOD, "id": 1.5}, 'field "id": expected a string or integer'),
        ({**GOOD, "subset": 3}, 'field "subset": expected a string, got number'),
        ({**GOOD, "principles": ""}, 'field "principles"'),
        ({**GOOD, "principles": 5}, 'field "principles"'),
        ({**GOOD, "principles": ["a", 1]}, 'field "principles"'),
    ],
)
def test_record_errors_name_file_line_and_field(tmp_path, line, field_text):
    # The bad record sits on line 3, after a good one and a blank line, so the line number is checked.
    path = write_jsonl(tmp_path, [GOOD, "", line])
    with pytest.raises(InputError) as exc:
        read_records(path)
    err = exc.value
    assert str(err).startswith(f"{path}:3: ")
    assert field_text in str(err)
    assert err.source == path and err.line == 3
    assert err.exit_code == ExitCode.BAD_INPUT


def test_too_many_responses_error(tmp_path):
    err = read_error(tmp_path, [{"prompt": "q", "responses": ["r"] * (MAX_RESPONSES + 1)}])
    assert str(err).startswith(f"{tmp_path / 'data.jsonl'}:1: ")
    assert f"at most {MAX_RESPONSES}" in str(err)


def test_invalid_json_reports_column(tmp_path):
    err = read_error(tmp_path, [GOOD, '{"prompt": "q" "responses": []}'])
    assert ":2: invalid JSON" in str(err)
    assert "column 16" in str(err)


def test_duplicate_ids(tmp_path):
    err = read_error(tmp_path, [{**GOOD, "id": "a"}, {**GOOD, "id": "b"}, {**GOOD, "id": "a"}])
    assert str(err).startswith(f"{tmp_path / 'data.jsonl'}:3: ")
    assert 'field "id": duplicate id' in str(err)
    assert "'a'" in str(err) and "first on line 1" in str(err)


def test_duplicate_ids_int_and_string_collide(tmp_path):
    err = read_error(tmp_path, [{**GOOD, "id": 1}, {**GOOD, "id": "1"}])
    assert ":2: " in str(err) and "duplicate id" in str(err)


def test_identical_records_without_ids_are_not_a_duplicate_id_error(tmp_path):
    recs = read_records(write_jsonl(tmp_path, [GOOD, GOOD, GOOD]))
    # each copy keeps its own id, so resuming a results file counts every copy
    assert len(recs) == 3 and [r.id for r in recs[1:]] == [recs[0].id + "#2", recs[0].id + "#3"]


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"prompt": "caf\xe9", "responses": ["a"]}\n')
    with pytest.raises(InputError) as exc:
        read_records(str(path))
    assert str(exc.value).startswith(f"{path}:2: ")
    assert "invalid UTF-8" in str(exc.value)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_records(str(path))
    assert str(exc.value) == f"{path}: no records: the file is empty"


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.jsonl")
    with pytest.raises(InputError) as exc:
        read_records(path)
    assert str(exc.value) == f"{path}: no such file"
    assert exc.value.exit_code == ExitCode.BAD_INPUT


def test_directory(tmp_path):
    with pytest.raises(InputError) as exc:
        read_records(str(tmp_path))
    assert str(exc.value) == f"{tmp_path}: is a directory, expected a file"


def test_record_from_dict_defaults_location():
    with pytest.raises(InputError) as exc:
        record_from_dict({"prompt": "q", "responses": [1]})
    assert str(exc.value).startswith("<input>:1: ")


# ---------------------------------------------------------------- stdin


def test_read_records_from_stdin(monkeypatch):
    set_stdin(monkeypatch, (json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "z"}) + "\n").encode())
    recs = read_records("-")
    assert [r.source for r in recs] == ["<stdin>", "<stdin>"]
    assert recs[1].id == "z" and recs[1].where == "<stdin>:2"


def test_stdin_errors_are_located(monkeypatch):
    set_stdin(monkeypatch, (json.dumps(GOOD) + "\n{broken\n").encode())
    with pytest.raises(InputError) as exc:
        read_records("-")
    assert str(exc.value).startswith("<stdin>:2: invalid JSON")


def test_stdin_invalid_utf8(monkeypatch):
    set_stdin(monkeypatch, b'{"prompt": "\xff"}')
    with pytest.raises(InputError) as exc:
        read_records("-")
    assert str(exc.value).startswith("<stdin>:1: invalid UTF-8")


# ---------------------------------------------------------------- read_prompts


def test_read_prompts_plain_text(tmp_path):
    path = tmp_path / "q.txt"
    text = "Write a haiku about rain.\n\nIt must mention {context} literally."
    path.write_text("\n" + text + "\n\n", encoding="utf-8")
    (rec,) = read_prompts(str(path))
    assert rec.query == text
    assert rec.context == (Turn("user", text),)
    assert rec.responses == ()
    assert rec.where == f"{path}:1"
    assert rec.id == content_key(rec.context, ())


def test_read_prompts_jsonl_without_responses(tmp_path):
    path = write_jsonl(tmp_path, [{"id": "a", "prompt": "Q1"}, {"prompt": "Q2", "responses": ["r"]}])
    recs = read_prompts(path)
    assert [r.query for r in recs] == ["Q1", "Q2"]
    assert recs[0].responses == () and recs[1].responses == ("r",)
    assert recs[0].id == "a"


def test_read_prompts_jsonl_errors_still_located(tmp_path):
    path = write_jsonl(tmp_path, [{"prompt": "Q1"}, {"prompt": ""}])
    with pytest.raises(InputError) as exc:
        read_prompts(path)
    assert str(exc.value).startswith(f"{path}:2: ") and '"prompt"' in str(exc.value)


def test_read_prompts_empty_text(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_prompts(str(path))
    assert str(exc.value) == f"{path}: empty prompt: expected the query text"


def test_read_prompts_from_stdin(monkeypatch):
    set_stdin(monkeypatch, "Explain TCP in one line.\n".encode())
    (rec,) = read_prompts("-")
    assert rec.query == "Explain TCP in one line."
    assert rec.source == "<stdin>"


def test_looks_like_jsonl():
    assert looks_like_jsonl('\n  {"prompt": "x"}')
    assert not looks_like_jsonl("Tell me about {braces}")
    assert not looks_like_jsonl("")


# ---------------------------------------------------------------- read_principles


def test_read_principles_plain_text(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\nAccuracy (Weight: 70%)\nBrevity (Weight: 30%)\n\n", encoding="utf-8")
    assert read_principles(str(path)) == [{"principles": "Accuracy (Weight: 70%)\nBrevity (Weight: 30%)"}]


def test_read_principles_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path,
        [
            {"id": "a", "prompt": "Q1", "principles": "Accuracy (Weight: 100%)"},
            "",
            {"principles": ["Clarity", "Tone"]},
        ],
    )
    assert read_principles(path) == [
        {"id": "a", "prompt": "Q1", "principles": "Accuracy (Weight: 100%)", "provenance": None},
        {"id": None, "prompt": None, "principles": "Clarity\nTone", "provenance": None},
    ]


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got array"),
        ({"id": "a"}, 'not a principles file (this line has no "principles" field)'),
        ({"id": "a", "prompt": "q", "responses": ["x", "y"]}, "it looks like records"),
        ({"id": "a", "principles": "  "}, 'field "principles"'),
        ({"id": "a", "principles": 3}, 'field "principles"'),
    ],
)
def test_read_principles_errors(tmp_path, bad, needle):
    path = write_jsonl(tmp_path, [{"principles": "ok"}, bad])
    with pytest.raises(InputError) as exc:
        read_principles(path)
    assert str(exc.value).startswith(f"{path}:2: ")
    assert needle in str(exc.value)


def test_read_principles_empty(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_principles(str(path))
    assert str(exc.value).startswith(f"{path}: ") and "empty" in str(exc.value)


def test_read_principles_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_principles(str(tmp_path / "missing.txt"))


def test_read_principles_from_stdin(monkeypatch):
    set_stdin(monkeypatch, b'{"id": "q1", "principles": "Correctness"}\n')
    assert read_principles("-") == [{"id": "q1", "prompt": None, "principles": "Correctness", "provenance": None}]
