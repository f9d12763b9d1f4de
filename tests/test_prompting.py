"""Unit tests for grm_cli/prompting.py: the paper's prompt layout, rendering, and template files."""

from __future__ import annotations

from pathlib import Path

import pytest

from grm_cli.core.judgment import parse_judgment
from grm_cli.core.prompt import (
    KINDS,
    Prompt,
    Template,
    builtin_templates,
    load_template,
    render,
    render_context,
)
from grm_cli.core.records import Record, Turn, record_from_dict
from grm_cli.errors import ExitCode, InputError


def rec(prompt="What is 2+2?", responses=("4", "5"), **kw) -> Record:
    return record_from_dict({"prompt": prompt, "responses": list(responses), **kw}, "t.jsonl", 5)


@pytest.fixture(scope="module")
def pointwise() -> Template:
    return load_template("pointwise")


def user_text(p: Prompt) -> str:
    assert len(p.messages) == 1 and p.messages[0]["role"] == "user"
    return p.messages[0]["content"]


# ---------------------------------------------------------------- the pointwise layout


def test_pointwise_renders_paper_sections(pointwise):
    p = render(pointwise, rec())
    text = user_text(p)
    markers = [
        "#### Conversation Context ####",
        "#### Responses to be Scored ####",
        "[The Begin of Response 1]",
        "[The End of Response 1]",
        "[The Begin of Response 2]",
        "[The End of Response 2]",
        "#### Output Format Requirements ####",
    ]
    positions = [text.index(m) for m in markers]
    assert positions == sorted(positions)  # and in this order
    assert "\\boxed{x, x} if there exists 2 responses" in text
    assert "Specific Criteria:" in text and "Analysis:" in text and "Scores:" in text
    assert "[The Begin of Response 3]" not in text
    # No placeholder is left unfilled.
    for ph in ("{context}", "{responses}", "{n}", "{example}", "{i}", "{response}"):
        assert ph not in text
    assert p.assistant_prefix == "Specific Criteria:"  # mode self: the model starts on its principles
    assert p.order == (0, 1)


def test_pointwise_general_criteria_present(pointwise):
    text = user_text(render(pointwise, rec()))
    for crit in ("Instruction Adherence", "Usefulness", "Level of Detail", "Relevance"):
        assert crit in text
    assert "between 1 and 10" in text


def test_context_and_response_blocks_exact(pointwise):
    text = user_text(render(pointwise, rec()))
    assert "#### Conversation Context ####\nWhat is 2+2?\n#### Responses to be Scored ####\n" in text
    assert "[The Begin of Response 1]\n4\n[The End of Response 1]\n[The Begin of Response 2]\n5\n[The End of Response 2]" in text


@pytest.mark.parametrize("n, example", [(1, "x"), (3, "x, x, x"), (5, "x, x, x, x, x")])
def test_box_example_matches_response_count(pointwise, n, example):
    text = user_text(render(pointwise, rec(responses=[f"answer {i}" for i in range(n)])))
    assert f"\\boxed{{{example}}} if there exists {n} responses" in text


def test_responses_appear_in_given_order(pointwise):
    r = rec(responses=("ALPHA", "BRAVO", "CHARLIE"))
    p = render(pointwise, r, order=(2, 0, 1))
    text = user_text(p)
    assert p.order == (2, 0, 1)
    assert text.index("CHARLIE") < text.index("BRAVO") and text.index("ALPHA") < text.index("BRAVO")
    assert text.index("CHARLIE") < text.index("ALPHA")
    assert "[The Begin of Response 1]\nCHARLIE\n" in text
    assert "[The Begin of Response 2]\nALPHA\n" in text
    assert "[The Begin of Response 3]\nBRAVO\n" in text


def test_order_must_be_permutation(pointwise):
    with pytest.raises(ValueError, match="permutation"):
        render(pointwise, rec(), order=(0, 0))
    with pytest.raises(ValueError, match="permutation"):
        render(pointwise, rec(), order=(0, 1, 2))


def test_user_content_with_placeholders_is_not_substituted_again(pointwise):
    r = rec(prompt="Explain {responses} and {context} and {n}", responses=("Use {i} and {response}", "{example}"))
    text = user_text(render(pointwise, r))
    assert "Explain {responses} and {context} and {n}" in text
    assert "[The Begin of Response 1]\nUse {i} and {response}\n[The End of Response 1]" in text
    assert "[The Begin of Response 2]\n{example}\n[The End of Response 2]" in text
    assert text.count("[The Begin of Response") == 2


def test_fixed_principles_prefill_assistant_prefix(pointwise):
    p = render(pointwise, rec(), principles="  Accuracy (Weight: 70%)\nBrevity (Weight: 30%)\n")
    assert p.assistant_prefix.startswith("Specific Criteria:")
    assert p.assistant_prefix.endswith("Analysis:")
    assert p.assistant_prefix == "Specific Criteria: Accuracy (Weight: 70%)\nBrevity (Weight: 30%)\nAnalysis:"
    # The prompt itself is unchanged by principles.
    assert user_text(p) == user_text(render(pointwise, rec()))


def test_prefix_plus_generation_parses(pointwise):
    p = render(pointwise, rec(), principles="Accuracy (Weight: 100%)")
    j = parse_judgment(p.assistant_prefix + " Response 1 is right.\nScores: \\boxed{9, 2}", 2, 1, 10)
    assert j.scores == (9, 2)
    assert j.principles == "Accuracy (Weight: 100%)"
    assert j.critique == "Response 1 is right."


def test_hint_names_shown_position(pointwise):
    r = rec(responses=("A", "B", "C"))
    # Record index 0 is the best; shown at position 3 under this order.
    text = user_text(render(pointwise, r, order=(1, 2, 0), hint_best=0))
    assert text.endswith("\nThe best response is: Response 3")
    text = user_text(render(pointwise, r, order=(0, 1, 2), hint_best=0))
    assert text.endswith("\nThe best response is: Response 1")
    text = user_text(render(pointwise, r, order=(2, 0, 1), hint_best=2))
    assert text.endswith("\nThe best response is: Response 1")


def test_no_hint_by_default(pointwise):
    assert "The best response is" not in user_text(render(pointwise, rec()))


def test_single_template_hint_is_the_label_score():
    single = load_template("single")
    text = user_text(render(single, rec(responses=("42",)), hint_best=1))
    assert text.endswith("\nThe correct score is: 1")
    assert "[The Begin of Response]\n42\n[The End of Response]" in text
    assert "\\boxed{x}" in text


def test_judge_template_example_is_one_index():
    judge = load_template("judge")
    text = user_text(render(judge, rec(responses=("a", "b", "c"))))
    assert "\\boxed{x}" in text
    assert "3 responses" in text
    assert judge.score_range(3) == (1, 3)
    assert judge.box_count(3) == 1


# ---------------------------------------------------------------- render_context


def test_single_turn_context_is_raw():
    assert render_context(rec(prompt="Hello there")) == "Hello there"


def test_multi_turn_context_lines(pointwise):
    r = record_from_dict(
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Add 2 and 3."},
            ],
            "responses": ["5", "6"],
        }
    )
    ctx = render_context(r)
    assert ctx == "User: Hi\nAssistant: Hello! How can I help?\nUser: Add 2 and 3."
    assert "#### Conversation Context ####\n" + ctx + "\n#### Responses" in user_text(render(pointwise, r))


def test_multi_turn_context_includes_system_turn():
    r = Record(id="x", context=(Turn("system", "Be terse."), Turn("user", "Q?")), responses=("a",))
    assert render_context(r) == "System: Be terse.\nUser: Q?"


# ---------------------------------------------------------------- shipped templates


def test_builtin_templates_all_load():
    names = builtin_templates()
    assert {"pointwise", "single", "judge"} <= set(names)
    for name in names:
        t = load_template(name)
        assert t.name == name
        assert t.kind in KINDS
        assert t.score_min <= t.score_max
        assert t.min_responses <= t.max_responses
        assert "{context}" in t.user and "{responses}" in t.user
        text = user_text(render(t, rec(responses=["r"] * max(t.min_responses, 1))))
        assert "#### Output Format Requirements ####" in text or name == "compact"
        if name != "compact":  # the paper's templates keep its section headers; compact is deliberately short
            assert "#### Conversation Context ####" in text
        assert "\\boxed{" in text


def test_builtin_template_settings():
    pw = load_template("pointwise")
    assert (pw.kind, pw.score_min, pw.score_max) == ("pointwise", 1, 10)
    assert pw.score_range(2) == (1, 10) and pw.box_count(4) == 4
    single = load_template("single")
    assert (single.kind, single.score_min, single.score_max) == ("single", 0, 1)
    assert (single.min_responses, single.max_responses) == (1, 1)
    judge = load_template("judge")
    assert judge.kind == "judge" and judge.min_responses == 2
    assert load_template() == pw  # default is pointwise


def test_unknown_builtin_name():
    with pytest.raises(InputError) as exc:
        load_template("no-such-template")
    assert "unknown template 'no-such-template'" in str(exc.value)
    assert "pointwise" in str(exc.value)


def test_check_count_single_rejects_two_responses():
    r = rec(responses=("a", "b"))
    with pytest.raises(InputError) as exc:
        load_template("single").check_count(r)
    msg = str(exc.value)
    assert msg.startswith("t.jsonl:5: ")
    assert 'field "responses"' in msg and "exactly 1" in msg and "has 2" in msg


def test_check_count_judge_rejects_one_response():
    with pytest.raises(InputError) as exc:
        load_template("judge").check_count(rec(responses=("a",)))
    assert "2 to 16" in str(exc.value) and "has 1" in str(exc.value)


def test_check_count_accepts_valid_counts():
    load_template("single").check_count(rec(responses=("a",)))
    load_template("judge").check_count(rec(responses=("a", "b")))
    pw = load_template("pointwise")
    pw.check_count(rec(responses=("a",)))
    pw.check_count(rec(responses=["r"] * 16))
    big = Record(id="b", context=(Turn("user", "q"),), responses=("r",) * 17, source="s", line=2)
    with pytest.raises(InputError, match="has 17"):
        pw.check_count(big)


# ---------------------------------------------------------------- user template files


GOOD_YAML = """\
name: mine
description: A test template.
kind: pointwise
score_min: 1
score_max: 5
user: |-
  Judge these.
  CONTEXT<<{context}>>
  {responses}
  Answer as \\boxed{{example}} for {n}.
response_block: "<r{i}>{response}</r{i}>"
principles_label: "Rules:"
critique_label: "Thoughts:"
"""


def test_user_yaml_template(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD_YAML, encoding="utf-8")
    t = load_template(str(path))
    assert (t.name, t.kind, t.score_min, t.score_max) == ("mine", "pointwise", 1, 5)
    assert t.path == str(path)
    assert t.scores_label == "Scores:"  # default kept
    p = render(t, rec(responses=("yes", "no")), order=(1, 0), principles="Be kind")
    assert user_text(p) == "Judge these.\nCONTEXT<<What is 2+2?>>\n<r1>no</r1>\n<r2>yes</r2>\nAnswer as \\boxed{x, x} for 2."
    assert p.assistant_prefix == "Rules: Be kind\nThoughts:"


def test_user_yaml_minimal_defaults(tmp_path):
    path = tmp_path / "min.yml"
    path.write_text('user: "Q: {context}\\n{responses}"\n', encoding="utf-8")
    t = load_template(str(path))
    assert t.name == "min"
    assert (t.kind, t.score_min, t.score_max, t.min_responses, t.max_responses) == ("pointwise", 1, 10, 1, 16)
    text = user_text(render(t, rec()))
    assert text == "Q: What is 2+2?\n[The Begin of Response 1]\n4\n[The End of Response 1]\n[The Begin of Response 2]\n5\n[The End of Response 2]"


@pytest.mark.parametrize(
    "content, needle",
    [
        ("user: [unclosed\n  kind: : :\n", "invalid YAML"),
        ('user: "only {context}"\n', "{responses}"),
        ('user: "only {responses}"\n', "{context}"),
        ('kind: ranking\nuser: "{context} {responses}"\n', 'key "kind"'),
        ("name: x\n", 'missing key "user"'),
        ("user: 5\n", 'key "user": expected str'),
        ("- a\n- b\n", "expected a YAML mapping"),
        ("", "expected a YAML mapping"),
        ('score_min: 9\nscore_max: 2\nuser: "{context} {responses}"\n', "score_min 9 is above score_max 2"),
        ('score_min: low\nuser: "{context} {responses}"\n', 'key "score_min"'),
        ('max_responses: 2.5\nuser: "{context} {responses}"\n', 'key "max_responses"'),
    ],
)
def test_broken_user_template_names_the_file(tmp_path, content, needle):
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_template(str(path))
    msg = str(exc.value)
    assert msg.startswith(str(path) + ":")
    assert needle in msg
    assert exc.value.exit_code == ExitCode.BAD_INPUT


def test_invalid_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('name: x\nuser: "{context} {responses}"\nkind: [oops\n', encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_template(str(path))
    assert exc.value.source == str(path)
    assert isinstance(exc.value.line, int) and exc.value.line >= 3
    assert "invalid YAML" in str(exc.value)


def test_missing_template_file(tmp_path):
    path = str(tmp_path / "absent.yaml")
    with pytest.raises(InputError) as exc:
        load_template(path)
    assert str(exc.value) == f"{path}: no such template file"


def test_template_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b'user: "caf\xe9 {context} {responses}"\n')
    with pytest.raises(InputError) as exc:
        load_template(str(path))
    assert str(exc.value).startswith(str(path)) and "cannot read the template file" in str(exc.value)


def test_principles_stop_comes_from_each_template():
    """A principles-only generation stops where that template's own response block would begin."""
    from grm_cli.core.prompt import builtin_templates

    for name in builtin_templates():
        t = load_template(name)
        head = t.response_block.split("{", 1)[0].strip()
        stops = t.principles_stop()
        assert t.critique_label in stops and t.scores_label in stops
        assert head in stops and all(stops)
    assert "[Response" in load_template("compact").principles_stop()


def test_deepseek_v2_template_fixture_renders_as_llama_cpp_builtin():
    """The DeepSeek-V2-Lite-Chat template fixture (transcribed; not in llama.cpp's models/templates) is
    recognised by llama.cpp as its built-in deepseek2 template and renders the same text: llama.cpp's
    src/llama-chat.cpp spells that layout out independently of the fixture."""
    import ctypes

    import jinja2
    import llama_cpp

    path = Path(__file__).parent / "fixtures" / "chat_templates" / "deepseek-ai-DeepSeek-V2-Lite-Chat.jinja"
    source = path.read_text(encoding="utf-8")
    chat = [("system", "Be strict."), ("user", "Which is right?"), ("assistant", "Response 1."), ("user", "Why?")]
    ours = jinja2.Environment().from_string(source).render(messages=[{"role": r, "content": c} for r, c in chat], bos_token="",
                                                             eos_token="<｜end▁of▁sentence｜>", add_generation_prompt=True)
    keep = [(r.encode(), c.encode()) for r, c in chat]
    msgs = (llama_cpp.llama_chat_message * len(keep))(*[llama_cpp.llama_chat_message(role=r, content=c) for r, c in keep])
    buf = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_chat_apply_template(source.encode(), msgs, len(keep), True, buf, len(buf))
    assert n > 0, "llama.cpp did not recognise the template"
    assert buf.raw[:n].decode() == ours
