"""Property: the vectorised voting@k curve (numpy: a draw mask times the score matrix, a seeded tie
priority) at k = K is the plain vote of `accuracy` (core.voting.vote + core.rules.break_tie), on random
records with ties, unparsed samples, records with no verdict, and float (expected) scores."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grm_cli.evaluation.metrics import accuracy, scaling_curve
from grm_cli.scoring.results import StoredResult, StoredSample

EXPECTED = st.sampled_from([1.1, 1.2, 1.3, 2.5, 3.3, 3.6]) | st.integers(10, 100).map(lambda t: t / 10) | st.floats(1.0, 10.0)
SAMPLED = st.integers(1, 10)


@st.composite
def records(draw, values):
    n = draw(st.integers(2, 4))
    k = draw(st.integers(1, 6))
    samples = []
    for _ in range(k):
        scores = draw(st.none() | st.tuples(*[values] * n))
        samples.append(StoredSample(scores=scores, order=tuple(range(n))))
    rid = draw(st.sampled_from(["a", "b", "llmbar-1", "r#2"])) + str(draw(st.integers(0, 99)))
    return StoredResult(rid, n, draw(st.integers(0, n - 1)), None, tuple(samples))


@st.composite
def permuted_tie(draw):
    """Two responses whose columns hold the same expected scores in another order: an exact tie for
    fsum, which float addition in sample order can miss (3.3 + 9.9 + 2.7 != 2.7 + 9.9 + 3.3)."""
    column = draw(st.lists(EXPECTED, min_size=3, max_size=6))
    other = draw(st.permutations(column))
    samples = tuple(StoredSample(scores=(a, b), order=(0, 1)) for a, b in zip(column, other))
    return StoredResult(f"t{draw(st.integers(0, 99))}", 2, draw(st.integers(0, 1)), None, samples)


def run(values):
    return st.lists(records(values), min_size=1, max_size=6, unique_by=lambda r: r.id)


def at_full_k(results, seed):
    point = scaling_curve(results, seed=seed, draws=3)[-1]
    assert point.k == max(len(r.samples) for r in results) and point.draws == 1
    return point.accuracy


@settings(max_examples=300, deadline=None)
@given(run(SAMPLED), st.integers(0, 2**32 - 1))
def test_curve_at_k_equals_K_is_accuracy_on_sampled_scores(results, seed):
    assert at_full_k(results, seed) == accuracy(results, seed=seed).accuracy


@settings(max_examples=300, deadline=None)
@given(run(EXPECTED), st.integers(0, 2**32 - 1))
def test_curve_at_k_equals_K_is_accuracy_on_expected_scores(results, seed):
    assert at_full_k(results, seed) == accuracy(results, seed=seed).accuracy


@settings(max_examples=300, deadline=None)
@given(st.lists(permuted_tie(), min_size=1, max_size=4, unique_by=lambda r: r.id), st.integers(0, 2**32 - 1))
def test_curve_at_k_equals_K_is_accuracy_on_float_ties(results, seed):
    assert at_full_k(results, seed) == accuracy(results, seed=seed).accuracy


@settings(max_examples=200, deadline=None)
@given(run(SAMPLED), st.integers(0, 2**32 - 1))
def test_each_record_alone(results, seed):
    for r in results:  # per record: the curve's pick is vote + break_tie's pick
        assert at_full_k([r], seed) == accuracy([r], seed=seed).accuracy
