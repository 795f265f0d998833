"""krum and multi_krum: selection by distance to the nearest neighbours."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms.krum import krum, multi_krum
from fma_core.exceptions import InvalidArgumentsError
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import assert_weights_equal, layered, single, updates


def reference_scores(rows: np.ndarray, f: int) -> np.ndarray:
    """Krum scores the slow, obvious way: a double loop over the updates."""
    count = len(rows)
    scores = []
    for i in range(count):
        distances = sorted(float(((rows[i] - rows[j]) ** 2).sum()) for j in range(count) if j != i)
        scores.append(sum(distances[: count - f - 2]))
    return np.array(scores)


def f_and_rows(elements: st.SearchStrategy[float]) -> st.SearchStrategy[tuple[int, np.ndarray]]:
    """An ``f`` from 0 to 2 and 2f + 3 to 2f + 7 updates (rows) of 1 to 4 values drawn from ``elements``."""
    return st.integers(0, 2).flatmap(
        lambda f: st.tuples(
            st.just(f),
            hnp.arrays(np.float64, st.tuples(st.integers(2 * f + 3, 2 * f + 7), st.integers(1, 4)), elements=elements),
        )
    )


class TestKrum:
    def test_selects_the_middle_update(self):
        # Prepare: with f=1 each score sums the 2 nearest squared distances:
        # 0 → 2.25+4, 1.5 → 0.25+1, 2 → 0.25+0.25, 2.5 → 0.25+1, 4 → 2.25+4.
        stream = updates(single([0.0]), single([1.5]), single([2.0]), single([2.5]), single([4.0]))

        # Execute
        result = krum(stream, context=AggregationContext(), f=1)

        # Assert
        assert_weights_equal(result.weights, single([2.0]))

    def test_rejects_planted_outliers(self):
        # Prepare: 5 honest updates around (1, 1), 2 Byzantine ones far away but close to each other.
        honest = [
            layered([1.0], [1.0]),
            layered([1.1], [0.9]),
            layered([0.9], [1.1]),
            layered([1.0], [1.05]),
            layered([1.02], [0.98]),
        ]
        byzantine = [layered([50.0], [-50.0]), layered([50.1], [-50.0])]

        # Execute
        result = krum(updates(*byzantine, *honest), context=AggregationContext(), f=2)

        # Assert: an honest update, returned exactly.
        assert any(
            all(np.array_equal(got, want) for got, want in zip(result.weights.layers, update.layers, strict=True))
            for update in honest
        )

    def test_needs_two_f_plus_three_updates(self):
        stream = updates(*(single([float(value)]) for value in range(6)))

        with pytest.raises(InvalidArgumentsError) as error:
            krum(stream, context=AggregationContext(), f=2)

        assert str(error.value) == (
            "krum with f=2 needs at least 2f + 3 = 7 updates, got 6; lower 'f' or let the model's requirement "
            "wait for 7 updates (e.g. require_x_updates)"
        )

    @settings(max_examples=50)
    # Whole numbers keep the scores exact, so the tie check below compares equal scores exactly.
    @given(f_and_rows(st.integers(-50, 50).map(float)))
    def test_selects_the_minimum_of_the_reference_scores(self, case):
        f, rows = case
        scores = reference_scores(rows, f)

        result = krum(updates(*(single(row) for row in rows)), context=AggregationContext(), f=f)

        # Any update with the best score is a correct choice on a tie.
        best = np.flatnonzero(scores == scores.min())
        assert any(np.array_equal(result.weights.layers[0], rows[index]) for index in best)


class TestMultiKrum:
    def test_averages_the_m_best_scored(self):
        # Prepare: with f=1 each score sums the 3 nearest squared distances; 1.8 and 2.2 score 0.04+0.16+3.24,
        # 2 scores 0.04+0.04+4, the others more.
        stream = updates(single([0.0]), single([1.8]), single([2.0]), single([2.2]), single([4.0]), single([40.0]))

        # Execute
        result = multi_krum(stream, context=AggregationContext(), f=1, m=2)

        # Assert
        assert_weights_equal(result.weights, single([2.0]))

    def test_default_m_averages_n_minus_f_and_drops_the_outlier(self):
        stream = updates(single([1.0]), single([2.0]), single([3.0]), single([4.0]), single([1000.0]))

        result = multi_krum(stream, context=AggregationContext(), f=1)

        assert_weights_equal(result.weights, single([2.5]))

    def test_m_one_is_krum(self):
        rows = [single([0.0, 1.0]), single([1.0, 1.0]), single([2.0, 0.0]), single([9.0, 9.0]), single([1.0, 2.0])]

        chosen = multi_krum(updates(*rows), context=AggregationContext(), f=1, m=1)

        assert_weights_equal(chosen.weights, krum(updates(*rows), context=AggregationContext(), f=1).weights)

    @settings(max_examples=50)
    @given(f_and_rows(st.floats(-50, 50)), st.integers(1, 3))
    def test_matches_the_mean_of_the_reference_best(self, case, m):
        f, rows = case
        best = np.argsort(reference_scores(rows, f), kind="stable")[:m]

        result = multi_krum(updates(*(single(row) for row in rows)), context=AggregationContext(), f=f, m=m)

        np.testing.assert_allclose(result.weights.layers[0], rows[best].mean(axis=0), atol=1e-9)

    def test_m_above_n_minus_f(self):
        stream = updates(*(single([float(value)]) for value in range(5)))

        with pytest.raises(InvalidArgumentsError) as error:
            multi_krum(stream, context=AggregationContext(), f=1, m=5)

        assert str(error.value) == (
            "multi_krum with f=1 can average at most N - f = 4 of 5 updates, got m=5; lower 'm' or leave it null"
        )

    def test_needs_two_f_plus_three_updates(self):
        with pytest.raises(InvalidArgumentsError, match=r"^multi_krum with f=0 needs at least 2f \+ 3 = 3 updates"):
            multi_krum(updates(single([1.0]), single([2.0])), context=AggregationContext(), f=0)
