"""fed_median: coordinate-wise median."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms.median import fed_median
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import assert_weights_equal, layered, single, updates


def test_coordinate_wise_median_of_an_odd_count():
    # Prepare
    stream = updates(layered([1, 9], [[5]]), layered([2, 7], [[4]]), layered([3, 8], [[6]]))

    # Execute
    result = fed_median(stream, context=AggregationContext())

    # Assert: each coordinate on its own, so the result need not be any one update.
    assert_weights_equal(result.weights, layered([2.0, 8.0], [[5.0]]))


def test_even_count_takes_the_mean_of_the_middle_two():
    result = fed_median(
        updates(single([1.0]), single([2.0]), single([4.0]), single([10.0])), context=AggregationContext()
    )

    assert_weights_equal(result.weights, single([3.0]))


def test_resists_planted_outliers():
    # Prepare: five honest clients near 1.0, two attackers sending huge values.
    honest = [single([1.0, -1.0]), single([1.1, -0.9]), single([0.9, -1.1]), single([1.05, -1.0]), single([0.95, -1.0])]
    attackers = [single([1e9, -1e9]), single([-1e9, 1e9])]

    # Execute
    result = fed_median(updates(*honest, *attackers), context=AggregationContext())

    # Assert
    np.testing.assert_allclose(result.weights.layers[0], [1.0, -1.0], atol=0.1)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 6)), elements=st.floats(-1e6, 1e6)))
def test_matches_numpy_median(rows):
    result = fed_median(updates(*(single(row) for row in rows)), context=AggregationContext())

    np.testing.assert_array_equal(result.weights.layers[0], np.median(rows, axis=0))
