"""fed_trimmed_mean: coordinate-wise trimmed mean."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms.trimmed_mean import fed_trimmed_mean
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import assert_weights_equal, layered, single, updates


def test_drops_the_extremes_of_every_coordinate():
    # Prepare: beta 0.2 of 5 updates trims one value at each end.
    stream = updates(
        layered([1, 50], [0]),
        layered([2, 40], [0]),
        layered([3, 30], [3]),
        layered([4, 20], [3]),
        layered([100, 10], [9]),
    )

    # Execute
    result = fed_trimmed_mean(stream, context=AggregationContext(), beta=0.2)

    # Assert: kept 2,3,4 / 20,30,40 / 0,3,3
    assert_weights_equal(result.weights, layered([3.0, 30.0], [2.0]))


def test_default_beta_trims_one_of_ten():
    values = [0.0, 1, 2, 3, 4, 5, 6, 7, 8, 1000]

    result = fed_trimmed_mean(updates(*(single([value]) for value in values)), context=AggregationContext())

    assert_weights_equal(result.weights, single([4.5]))


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_too_few_updates_to_trim_is_the_mean(beta):
    result = fed_trimmed_mean(updates(single([1.0]), single([4.0])), context=AggregationContext(), beta=beta)

    assert_weights_equal(result.weights, single([2.5]))


def test_trims_floor_of_beta_times_n_despite_float_rounding():
    # Prepare: 0.29 * 100 is 28.999999999999996 in floating point; floor(0.29 * 100) = 29 values go at each end.
    values = np.arange(100.0)
    values[:29] = -1e9
    values[71:] = 1e9

    # Execute
    result = fed_trimmed_mean(updates(*(single([value]) for value in values)), context=AggregationContext(), beta=0.29)

    # Assert: only 29..70 remain.
    assert_weights_equal(result.weights, single([np.mean(np.arange(29.0, 71.0))]))


def test_resists_planted_outliers():
    # Prepare: 8 honest clients, 2 attackers at both extremes; beta 0.2 trims 2 at each end.
    rng = np.random.default_rng(7)
    honest = [single(1.0 + 0.01 * rng.standard_normal(4)) for _ in range(8)]
    attackers = [single(np.full(4, 1e6)), single(np.full(4, -3e6))]

    # Execute
    result = fed_trimmed_mean(updates(*attackers, *honest), context=AggregationContext(), beta=0.2)

    # Assert
    np.testing.assert_allclose(result.weights.layers[0], np.ones(4), atol=0.05)


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 5)), elements=st.floats(-1e6, 1e6)),
    st.floats(min_value=0, max_value=0.49),
)
def test_matches_sorted_reference(rows, beta):
    trim = int(beta * rows.shape[0])
    reference = np.sort(rows, axis=0)[trim : rows.shape[0] - trim].mean(axis=0)

    result = fed_trimmed_mean(updates(*(single(row) for row in rows)), context=AggregationContext(), beta=beta)

    np.testing.assert_allclose(result.weights.layers[0], reference, rtol=1e-12, atol=1e-6)
