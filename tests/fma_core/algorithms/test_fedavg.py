"""fed_avg: the mean weighted by num_examples."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms.fedavg import fed_avg
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import CountingUpdates, assert_weights_equal, layered, updates


def test_weighted_by_num_examples():
    # Prepare
    stream = updates(layered([0, 8], [1]), layered([4, 0], [5]), num_examples=[3, 1])

    # Execute
    result = fed_avg(stream, context=AggregationContext())

    # Assert: (3*0 + 1*4)/4 = 1, (3*8 + 0)/4 = 6, (3*1 + 5)/4 = 2
    assert_weights_equal(result.weights, layered([1.0, 6.0], [2.0]))


def test_equal_counts_give_the_plain_mean():
    result = fed_avg(updates(layered([1.0]), layered([2.0])), context=AggregationContext())

    assert_weights_equal(result.weights, layered([1.5]))


def test_large_example_counts_do_not_overflow_integer_weights():
    # Prepare: integer layers scaled by counts near 2**62 overflow int64 unless scaled as floats
    stream = updates(layered([1, 2], [3]), layered([1, 2], [3]), num_examples=[2**62, 2**62])

    # Execute
    result = fed_avg(stream, context=AggregationContext())

    # Assert
    assert_weights_equal(result.weights, layered([1.0, 2.0], [3.0]))


def test_streams_once():
    stream = CountingUpdates(updates(layered([1.0]), layered([2.0]), num_examples=[2, 5]))

    fed_avg(stream, context=AggregationContext())

    assert (stream.iterations, stream.loaded) == (1, 2)


@given(
    st.integers(1, 7).flatmap(
        lambda count: st.tuples(
            hnp.arrays(np.float64, (count, 5), elements=st.floats(-1e3, 1e3)),
            st.lists(st.integers(1, 10_000), min_size=count, max_size=count),
        )
    )
)
def test_matches_numpy_average(case):
    rows, examples = case

    result = fed_avg(updates(*(layered(row) for row in rows), num_examples=examples), context=AggregationContext())

    np.testing.assert_allclose(result.weights.layers[0], np.average(rows, axis=0, weights=examples), atol=1e-9)
