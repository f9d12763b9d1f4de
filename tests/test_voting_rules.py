"""Unit tests for voting (Eq. 14), the paper's correctness rule and RL reward (Eq. 10, 11), and seeding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grm_cli.core.rules import argmax_unique, is_correct, rl_reward, tied_best
from grm_cli.core.sampling import response_order, sample_seed
from grm_cli.core.voting import Verdict, judge_to_scores, to_record_order, vote

# ---------------------------------------------------------------- to_record_order


def test_to_record_order_identity_and_reversed():
    assert to_record_order((8, 3), (0, 1)) == (8, 3)
    assert to_record_order((9, 5), (1, 0)) == (5, 9)


def test_to_record_order_three_way():
    # order[j] = record index shown at position j: shown (A@rec2, B@rec0, C@rec1)
    assert to_record_order((7, 1, 4), (2, 0, 1)) == (1, 4, 7)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=16), st.integers(min_value=0, max_value=2**31 - 1))
def test_to_record_order_inverts_the_shown_order(n, seed):
    order = response_order(n, seed)
    record_scores = tuple(range(100, 100 + n))  # distinct score per record index
    shown = tuple(record_scores[k] for k in order)
    assert to_record_order(shown, order) == record_scores


# ---------------------------------------------------------------- vote: the paper's worked example


def test_table17_worked_example():
    # Table 17: three samples. Sample 1 shown in record order (8, 8); samples 2 and 3 were shown with
    # the responses reversed and scored (9, 5) and (10, 7) in SHOWN order.
    shown = [((8, 8), (0, 1)), ((9, 5), (1, 0)), ((10, 7), (1, 0))]
    record_order = [to_record_order(s, o) for s, o in shown]
    assert record_order == [(8, 8), (5, 9), (7, 10)]
    v = vote(record_order, 2)
    assert isinstance(v, Verdict)
    assert v.totals == (20, 27)
    assert v.best == 1
    assert v.tied == (1,)
    assert v.is_tie is False
    assert v.margin == 7
    assert v.votes == 3
    assert v.unparsed == 0


def test_table17_without_mapping_back_gives_a_different_answer():
    # Summing in shown order would be wrong: 27 vs 20, the other response.
    v = vote([(8, 8), (9, 5), (10, 7)], 2)
    assert v.totals == (27, 20) and v.best == 0


# ---------------------------------------------------------------- vote: ties, unparsed, margins


def test_tie_is_reported_as_tie():
    v = vote([(8, 6), (6, 8)], 2)
    assert v.totals == (14, 14)
    assert v.best is None
    assert v.tied == (0, 1)
    assert v.is_tie is True
    assert v.margin == 0


def test_partial_tie_among_three():
    v = vote([(9, 9, 2)], 3)
    assert v.best is None
    assert v.tied == (0, 1)
    assert v.margin == 0


def test_single_greedy_sample():
    v = vote([(3, 7, 5)], 3)
    assert v.totals == (3, 7, 5)
    assert v.best == 1
    assert v.margin == 2
    assert v.votes == 1


def test_unparsed_samples_are_excluded_not_zero():
    # Left out, not counted as (0, 0): votes counts only the parsed samples, unparsed the rest.
    v = vote([(4, 6), None, (5, 2), None], 2)
    assert v.totals == (9, 8)
    assert v.best == 0
    assert v.votes == 2
    assert v.unparsed == 2


def test_all_unparsed():
    v = vote([None, None, None], 2)
    assert v.totals is None
    assert v.best is None
    assert v.tied == ()
    assert v.is_tie is False
    assert v.margin is None
    assert v.votes == 0
    assert v.unparsed == 3


def test_no_samples_at_all():
    v = vote([], 2)
    assert (v.totals, v.best, v.votes, v.unparsed) == (None, None, 0, 0)


def test_single_response_margin_is_none():
    v = vote([(7,), (9,)], 1)
    assert v.totals == (16,)
    assert v.best == 0
    assert v.tied == (0,)
    assert v.margin is None


def test_sample_length_mismatch_raises():
    with pytest.raises(ValueError, match="3 scores for 2 responses"):
        vote([(1, 2), (1, 2, 3)], 2)


def test_margin_is_top_minus_runner_up():
    v = vote([(10, 2, 7), (9, 1, 8)], 3)
    assert v.totals == (19, 3, 15)
    assert v.margin == 4
    assert v.best == 0


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=2, max_value=6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.one_of(st.none(), st.lists(st.integers(1, 10), min_size=n, max_size=n)), max_size=12),
        )
    )
)
def test_property_vote_sums_parsed_samples(case):
    n, samples = case
    v = vote(samples, n)
    parsed = [s for s in samples if s is not None]
    assert v.votes == len(parsed)
    assert v.unparsed == len(samples) - len(parsed)
    if not parsed:
        assert v.totals is None and v.best is None
        return
    assert v.totals == tuple(sum(s[i] for s in parsed) for i in range(n))
    top = max(v.totals)
    assert v.tied == tuple(i for i, t in enumerate(v.totals) if t == top)
    assert (v.best is None) == (len(v.tied) > 1)
    if v.best is not None:
        assert v.totals[v.best] == top
    assert v.margin == top - sorted(v.totals)[-2]


# ---------------------------------------------------------------- rules


def test_argmax_unique_and_tied_best():
    assert argmax_unique([1, 5, 3]) == 1
    assert argmax_unique([5, 5, 3]) is None
    assert argmax_unique([]) is None
    assert argmax_unique([4]) == 0
    assert tied_best([5, 2, 5]) == [0, 2]
    assert tied_best([1, 2]) == [1]
    assert tied_best([]) == []


@pytest.mark.parametrize(
    "scores, label, expected",
    [
        ((9, 3), 0, True),
        ((9, 3), 1, False),
        ((3, 9), 1, True),
        ((7, 7), 0, False),  # a tie is wrong for either label
        ((7, 7), 1, False),
        ((8, 8, 2), 0, False),  # tie at the top among three
        ((2, 8, 8), 0, False),
        ((1, 2, 10, 9), 2, True),
        ((1, 2, 10, 9), 3, False),
        (None, 0, False),  # unparsed is never correct
        ((), 0, False),
    ],
)
def test_is_correct_pairwise_and_bon(scores, label, expected):
    assert is_correct(scores, label) is expected


@pytest.mark.parametrize(
    "scores, label, expected",
    [
        ((1,), 1, True),  # n == 1: the label is the ground-truth score r_1
        ((0,), 0, True),
        ((0,), 1, False),
        ((1,), 0, False),
        ((7,), 7, True),
        ((7,), 8, False),
        (None, 1, False),
    ],
)
def test_is_correct_single_response_equality_rule(scores, label, expected):
    assert is_correct(scores, label) is expected


def test_is_correct_label_out_of_range_raises():
    with pytest.raises(ValueError):
        is_correct((3, 4), 2)
    with pytest.raises(ValueError):
        is_correct((3, 4), -1)


@pytest.mark.parametrize(
    "scores, label, reward",
    [((9, 3), 0, 1.0), ((9, 3), 1, -1.0), ((5, 5), 0, -1.0), (None, 0, -1.0), ((1,), 1, 1.0), ((0,), 1, -1.0)],
)
def test_rl_reward_plus_minus_one(scores, label, reward):
    r = rl_reward(scores, label)
    assert r == reward
    assert isinstance(r, float)


def test_verdict_totals_feed_is_correct():
    # The voted totals of the worked example single out response 1.
    v = vote([(8, 8), (5, 9), (7, 10)], 2)
    assert is_correct(v.totals, 1) is True
    assert is_correct(v.totals, 0) is False
    assert is_correct(vote([None], 2).totals, 0) is False


# ---------------------------------------------------------------- judge_to_scores


def test_judge_to_scores_identity_order():
    assert judge_to_scores(1, (0, 1, 2)) == (1, 0, 0)
    assert judge_to_scores(3, (0, 1, 2)) == (0, 0, 1)


def test_judge_to_scores_maps_shown_position_to_record_index():
    # Shown position 1 holds record 2; shown position 3 holds record 1.
    assert judge_to_scores(1, (2, 0, 1)) == (0, 0, 1)
    assert judge_to_scores(3, (2, 0, 1)) == (0, 1, 0)
    assert judge_to_scores(2, (1, 0)) == (1, 0)


def test_judge_votes_count_per_response():
    samples = [judge_to_scores(1, (1, 0)), judge_to_scores(2, (0, 1)), judge_to_scores(1, (0, 1))]
    v = vote(samples, 2)
    assert v.totals == (1, 2)
    assert v.best == 1


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16])
def test_response_order_is_permutation(n):
    for seed in range(20):
        order = response_order(n, seed)
        assert sorted(order) == list(range(n))
        assert isinstance(order, tuple)


def test_response_order_deterministic_per_seed():
    assert response_order(8, 1234) == response_order(8, 1234)
    orders = {response_order(8, s) for s in range(30)}
    assert len(orders) > 20  # different seeds give different orders


def test_response_order_no_shuffle():
    assert response_order(5, 99, shuffle=False) == (0, 1, 2, 3, 4)
    assert response_order(1, 99) == (0,)
    assert response_order(0, 99) == ()


def test_response_order_pairs_use_both_orders():
    seen = {response_order(2, s) for s in range(50)}
    assert seen == {(0, 1), (1, 0)}


def test_sample_seed_deterministic_and_31_bit():
    a = sample_seed(0, "rec-1", 0)
    assert a == sample_seed(0, "rec-1", 0)
    for args in [(0, "rec-1", 0), (7, "x", 31), (2**40, "sha256:abcd", 5)]:
        s = sample_seed(*args)
        assert isinstance(s, int) and 0 <= s < 2**31


def test_sample_seed_differs_across_records_samples_and_base():
    seeds = {sample_seed(0, f"rec-{r}", i) for r in range(20) for i in range(8)}
    assert len(seeds) == 160
    assert sample_seed(0, "a", 0) != sample_seed(1, "a", 0)
    assert sample_seed(0, "a", 0) != sample_seed(0, "b", 0)
    assert sample_seed(0, "a", 0) != sample_seed(0, "a", 1)


def test_sample_seed_fields_do_not_run_together():
    # ("1", index 23) must not collide with ("12", index 3).
    assert sample_seed(0, "1", 23) != sample_seed(0, "12", 3)
    assert sample_seed(1, "2", 0) != sample_seed(12, "", 0)


def test_orders_vary_across_records_for_the_same_sample_index():
    orders = {response_order(4, sample_seed(0, f"r{k}", 0)) for k in range(40)}
    assert len(orders) > 10  # a shared seed would show every record in the same order


def test_single_response_rule_is_a_strict_majority_of_parsed_samples():
    from grm_cli.core.rules import single_response_correct

    assert single_response_correct([(1,), (1,), (0,)], 1)
    assert not single_response_correct([(1,), (0,)], 1)  # an even split is wrong
    assert not single_response_correct([None, None], 1)  # nothing parsed is wrong
    assert single_response_correct([(1,), None, None], 1)  # unparsed samples are left out, not counted as 0
    assert single_response_correct([(0.5,), (0.7,)], 1)  # expected scores at their nearest integer, half up
    assert not single_response_correct([(0.49,), (0.5,)], 1)


def test_label_margin_and_top_lead_are_different_quantities():
    from grm_cli.core.rules import label_margin, top_lead

    assert label_margin((3, 9, 5), 0) == -6 and label_margin((3, 9, 5), 1) == 4
    assert top_lead((3, 9, 5)) == 4 and top_lead((9, 9)) == 0 and top_lead((4,)) is None
    assert label_margin((7,), 0) == 0


def test_record_label_and_label_of_name_the_missing_field():
    from grm_cli.core.records import record_from_dict
    from grm_cli.core.rules import label_of, record_label
    from grm_cli.errors import InputError

    pair = record_from_dict({"prompt": "q", "chosen": "a", "rejected": "b"}, "f.jsonl", 4)
    assert record_label(pair) == label_of(pair) == pair.preferred
    bare = record_from_dict({"prompt": "q", "responses": ["a", "b"]}, "f.jsonl", 5)
    assert record_label(bare) is None
    with pytest.raises(InputError, match=r'^f\.jsonl:5: field "preferred".*RL training needs'):
        label_of(bare, "RL training")
