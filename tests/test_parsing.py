"""Unit tests for grm_cli/parsing.py: the one score parser (last \\boxed{} wins, exact count, in range)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grm_cli.core.judgment import Criterion, Judgment, parse_criteria, parse_judgment
from grm_cli.core.score_line import parse_scores

B = "\\boxed"  # the LaTeX command, spelled once


# ---------------------------------------------------------------- parse_scores: accepted outputs


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"Scores: {B}{{9, 5}}", (9, 5)),
        (f"**Scores: {B}{{8, 8}}**", (8, 8)),  # seen: markdown bold around the line
        (f"### Output:\n{B}{{10, 7}}", (10, 7)),  # seen: no "Scores:" label at all
        (f"Scores: {B}{{ 1 ,10 }}", (1, 10)),  # odd spacing inside the box
        (f"Scores: {B} {{3, 4}}", (3, 4)),  # space between command and brace
        (f"Scores: {B}{{3; 4}}", (3, 4)),  # semicolon separator
        (f"Scores: {B}{{3 4}}", (3, 4)),  # whitespace separator
        (f"Scores: {B}{{03, 4}}", (3, 4)),  # leading zero is still the integer 3
        (f"Scores: $$ {B}{{6, 2}} $$.", (6, 2)),  # LaTeX math delimiters around it
    ],
)
def test_parse_scores_accepts_seen_formats(text, expected):
    scores, error = parse_scores(text, 2, 1, 10)
    assert error is None
    assert scores == expected
    assert all(isinstance(s, int) for s in scores)


def test_parse_scores_last_box_wins():
    text = f"Response 1 would get {B}{{2, 3}} at first glance.\nScores: {B}{{9, 5}}"
    assert parse_scores(text, 2, 1, 10) == ((9, 5), None)


def test_parse_scores_last_box_wins_even_if_the_earlier_one_is_valid_and_the_last_is_bad():
    # The last box decides; an earlier valid box must never be used as a fallback.
    text = f"Draft: {B}{{8, 9}}\nScores: {B}{{8, 11}}"
    scores, error = parse_scores(text, 2, 1, 10)
    assert scores is None
    assert "11" in error and "1..10" in error


def test_parse_scores_last_box_malformed_does_not_fall_back_to_earlier_box():
    text = f"Draft: {B}{{8, 9}}\nScores: {B}{{\\textbf{{3}}, 4}}"
    scores, error = parse_scores(text, 2, 1, 10)
    assert scores is None
    assert error is not None and "last" in error


def test_parse_scores_unclosed_last_box_is_an_error():
    scores, error = parse_scores(f"Scores: {B}{{8, 9}} then {B}{{7, 6", 2, 1, 10)
    assert scores is None
    assert error is not None


@pytest.mark.parametrize("count, text, expected", [(1, f"{B}{{7}}", (7,)), (4, f"{B}{{1, 2, 3, 4}}", (1, 2, 3, 4))])
def test_parse_scores_other_counts(count, text, expected):
    assert parse_scores(text, count, 1, 10) == (expected, None)


def test_parse_scores_single_variant_zero_one_range():
    assert parse_scores(f"Scores: {B}{{0}}", 1, 0, 1) == ((0,), None)
    assert parse_scores(f"Scores: {B}{{1}}", 1, 0, 1) == ((1,), None)
    scores, error = parse_scores(f"Scores: {B}{{2}}", 1, 0, 1)
    assert scores is None and "0..1" in error


def test_parse_scores_range_bounds_are_inclusive():
    assert parse_scores(f"{B}{{1, 10}}", 2, 1, 10) == ((1, 10), None)
    assert parse_scores(f"{B}{{0, 10}}", 2, 1, 10)[0] is None
    assert parse_scores(f"{B}{{1, 11}}", 2, 1, 10)[0] is None


# ---------------------------------------------------------------- parse_scores: explicit errors, never 0


@pytest.mark.parametrize(
    "text, count, needle",
    [
        ("Scores: 8, 9", 2, "no \\boxed"),  # no box at all
        ("", 2, "no \\boxed"),
        (f"Scores: {B}{{x, x}}", 2, "'x'"),  # the template's own placeholder
        (f"Scores: {B}{{}}", 2, "empty"),
        (f"Scores: {B}{{   }}", 2, "empty"),
        (f"Scores: {B}{{8}}", 2, "holds 1 integers, expected 2"),  # too few
        (f"Scores: {B}{{8, 7, 6}}", 2, "holds 3 integers, expected 2"),  # too many
        (f"Scores: {B}{{11, 5}}", 2, "11 outside 1..10"),
        (f"Scores: {B}{{0, 5}}", 2, "0 outside 1..10"),
        (f"Scores: {B}{{8.5, 7}}", 2, "'8.5'"),  # decimals
        (f"Scores: {B}{{-3, 7}}", 2, "'-3'"),  # negative numbers
        (f"Scores: {B}{{eight, seven}}", 2, "'eight'"),
        (f"Scores: {B}{{8/10, 7/10}}", 2, "'8/10'"),
        (f"Scores: {B}{{Response 1}}", 1, "'Response'"),
    ],
)
def test_parse_scores_errors_are_explicit(text, count, needle):
    scores, error = parse_scores(text, count, 1, 10)
    assert scores is None  # never a 0 score, never a partial tuple
    assert isinstance(error, str) and error
    assert needle in error


def test_parse_scores_error_quotes_the_box_contents():
    _, error = parse_scores(f"Scores: {B}{{8, 7, 6}}", 2, 1, 10)
    assert "8, 7, 6" in error


# ---------------------------------------------------------------- parse_scores: properties


_no_backslash_text = st.text(alphabet=st.characters(blacklist_characters="\\", blacklist_categories=("Cs",)), max_size=200)


@st.composite
def _box_case(draw):
    lo = draw(st.integers(min_value=0, max_value=20))
    hi = draw(st.integers(min_value=lo, max_value=lo + 30))
    values = draw(st.lists(st.integers(min_value=lo, max_value=hi), min_size=1, max_size=16))
    sep = draw(st.sampled_from([", ", ",", " , ", "; "]))
    prefix = draw(_no_backslash_text)
    suffix = draw(_no_backslash_text)
    return lo, hi, values, prefix + B + "{" + sep.join(map(str, values)) + "}" + suffix


@settings(max_examples=150, deadline=None)
@given(_box_case())
def test_property_rendered_in_range_ints_round_trip(case):
    lo, hi, values, text = case
    scores, error = parse_scores(text, len(values), lo, hi)
    assert error is None
    assert scores == tuple(values)


@settings(max_examples=100, deadline=None)
@given(_box_case())
def test_property_wrong_count_is_always_an_error(case):
    lo, hi, values, text = case
    for count in (len(values) - 1, len(values) + 1):
        if count < 1:
            continue
        scores, error = parse_scores(text, count, lo, hi)
        assert scores is None
        assert error and str(count) in error


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300).filter(lambda t: B not in t), st.integers(min_value=1, max_value=16))
def test_property_text_without_boxed_is_an_error(text, count):
    scores, error = parse_scores(text, count, 1, 10)
    assert scores is None
    assert isinstance(error, str) and "\\boxed" in error


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-50, max_value=60), min_size=2, max_size=6))
def test_property_any_out_of_range_value_fails(values):
    text = f"Scores: {B}{{{', '.join(map(str, values))}}}"
    scores, error = parse_scores(text, len(values), 1, 10)
    if all(1 <= v <= 10 for v in values):
        assert scores == tuple(values) and error is None
    else:
        assert scores is None and error


# ---------------------------------------------------------------- parse_judgment

FULL = (
    "Specific Criteria: Correctness of the arithmetic (Weight: 60%); Clarity of the explanation (Weight: 40%).\n"
    "Analysis: Response 1 is correct and explains each step. Response 2 makes an arithmetic error.\n"
    f"Scores: {B}{{9, 3}}"
)


def test_parse_judgment_full_output():
    j = parse_judgment(FULL, 2, 1, 10)
    assert isinstance(j, Judgment)
    assert j.ok is True
    assert j.scores == (9, 3)
    assert j.error is None
    assert j.text == FULL
    assert j.principles == "Correctness of the arithmetic (Weight: 60%); Clarity of the explanation (Weight: 40%)."
    assert j.critique == "Response 1 is correct and explains each step. Response 2 makes an arithmetic error."
    assert j.criteria == (
        Criterion("Correctness of the arithmetic", 60.0),
        Criterion("Clarity of the explanation", 40.0),
    )


def test_parse_judgment_markdown_labels():
    text = (
        "**Specific Criteria:** Accuracy (Weight: 70%); Brevity (Weight: 30%)\n\n"
        "**Analysis:** Both are accurate; the second is shorter.\n\n"
        f"**Scores: {B}{{8, 8}}**"
    )
    j = parse_judgment(text, 2, 1, 10)
    assert j.scores == (8, 8)
    assert j.principles == "Accuracy (Weight: 70%); Brevity (Weight: 30%)"
    assert j.critique == "Both are accurate; the second is shorter."
    assert [c.weight for c in j.criteria] == [70.0, 30.0]


def test_parse_judgment_without_scores_label_cuts_sections_at_box():
    text = f"Specific Criteria: Accuracy.\nAnalysis: Response 2 is better.\n### Output:\n{B}{{10, 7}}"
    j = parse_judgment(text, 2, 1, 10)
    assert j.scores == (10, 7)
    assert j.critique == "Response 2 is better.\n### Output:"
    assert j.principles == "Accuracy."


def test_parse_judgment_unparsed_keeps_text_and_sections():
    text = "Specific Criteria: Accuracy (Weight: 100%).\nAnalysis: I cannot decide.\nScores: \\boxed{x, x}"
    j = parse_judgment(text, 2, 1, 10)
    assert j.ok is False
    assert j.scores is None
    assert "'x'" in j.error
    assert j.text == text
    assert j.principles == "Accuracy (Weight: 100%)."
    assert j.critique == "I cannot decide."


def test_parse_judgment_missing_sections_are_none():
    j = parse_judgment(f"{B}{{4, 5}}", 2, 1, 10)
    assert j.scores == (4, 5)
    assert j.principles is None
    assert j.critique is None
    assert j.criteria == ()


def test_parse_judgment_empty_sections_are_none():
    j = parse_judgment(f"Specific Criteria:\nAnalysis:\nScores: {B}{{4, 5}}", 2, 1, 10)
    assert j.principles is None
    assert j.critique is None


def test_parse_judgment_custom_labels_for_judge_template():
    text = (
        "Specific Criteria: Safety (Weight: 50%); Helpfulness (Weight: 50%).\n"
        "Analysis: Response 2 refuses politely.\n"
        f"Best Response: {B}{{2}}"
    )
    j = parse_judgment(text, 1, 1, 3, scores_label="Best Response:")
    assert j.scores == (2,)
    assert j.critique == "Response 2 refuses politely."
    assert j.principles == "Safety (Weight: 50%); Helpfulness (Weight: 50%)."


def test_parse_judgment_uses_last_labels():
    # A model that restarts its answer: the last sections are the ones that count.
    text = (
        "Specific Criteria: old (Weight: 10%)\nAnalysis: old analysis\n"
        "Let me redo this.\n"
        f"Specific Criteria: new (Weight: 90%)\nAnalysis: new analysis\nScores: {B}{{2, 9}}"
    )
    j = parse_judgment(text, 2, 1, 10)
    assert j.principles == "new (Weight: 90%)"
    assert j.critique == "new analysis"
    assert j.scores == (2, 9)


def test_parse_judgment_with_prefilled_principles():
    prefix = "Specific Criteria: Politeness (Weight: 20%); Accuracy (Weight: 80%)\nAnalysis:"
    generated = f" Response 1 is rude but correct.\nScores: {B}{{7, 4}}"
    j = parse_judgment(prefix + generated, 2, 1, 10)
    assert j.criteria == (Criterion("Politeness", 20.0), Criterion("Accuracy", 80.0))
    assert j.critique == "Response 1 is rude but correct."
    assert j.scores == (7, 4)


def test_judgment_is_frozen():
    j = parse_judgment(FULL, 2, 1, 10)
    with pytest.raises(AttributeError):
        j.scores = (1, 1)  # type: ignore[misc]


# ---------------------------------------------------------------- parse_criteria


def test_parse_criteria_list_with_weights():
    text = (
        "1. Factual accuracy of the dates (Weight: 30%)\n"
        "2. Completeness of the timeline (Weight: 50%)\n"
        "- Tone (Weight: 20%)\n"
    )
    assert parse_criteria(text) == (
        Criterion("Factual accuracy of the dates", 30.0),
        Criterion("Completeness of the timeline", 50.0),
        Criterion("Tone", 20.0),
    )


def test_parse_criteria_bullets_and_missing_weights():
    text = "* Correct code\n• Handles empty input (weight 25%)\n3) Uses the standard library"
    assert parse_criteria(text) == (
        Criterion("Correct code", None),
        Criterion("Handles empty input", 25.0),
        Criterion("Uses the standard library", None),
    )


def test_parse_criteria_semicolon_clauses():
    text = "Accuracy (Weight: 40%); Clarity (Weight: 35%); Conciseness (Weight: 25%)."
    crits = parse_criteria(text)
    assert [c.text for c in crits] == ["Accuracy", "Clarity", "Conciseness"]
    assert [c.weight for c in crits] == [40.0, 35.0, 25.0]
    assert sum(c.weight for c in crits) == 100.0


def test_parse_criteria_sentences():
    crits = parse_criteria("Accuracy matters most (Weight: 60%). Style matters less (Weight: 40%).")
    assert crits == (Criterion("Accuracy matters most", 60.0), Criterion("Style matters less", 40.0))


def test_parse_criteria_inline_numbered_list_has_no_number_only_items():
    crits = parse_criteria("1. Accuracy (Weight: 40%). 2. Clarity (Weight: 60%).")
    assert crits == (Criterion("Accuracy", 40.0), Criterion("Clarity", 60.0))


@pytest.mark.parametrize(
    "item, name, weight",
    [
        ("Accuracy (Weight: 30%)", "Accuracy", 30.0),
        ("Accuracy (weight: 30 %)", "Accuracy", 30.0),
        ("Accuracy (WEIGHT=12.5%)", "Accuracy", 12.5),
        ("Accuracy: weight 30", "Accuracy", 30.0),
        ("Accuracy", "Accuracy", None),
    ],
)
def test_parse_criteria_weight_spellings(item, name, weight):
    assert parse_criteria(item) == (Criterion(name, weight),)


@pytest.mark.parametrize("empty", [None, "", "\n"])
def test_parse_criteria_empty(empty):
    assert parse_criteria(empty) == ()
