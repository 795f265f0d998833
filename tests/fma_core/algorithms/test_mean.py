"""avg_values_if_data and average_layers: the upstream unweighted means."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms.mean import average_layers, avg_values_if_data
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import CountingUpdates, assert_weights_equal, layered, single, updates

MEANS = [avg_values_if_data, average_layers]


@pytest.mark.parametrize("aggregator", MEANS)
class TestUnweightedMeans:
    def test_single_array_element_wise(self, aggregator):
        # Prepare
        stream = updates(single([[1, 2], [3, 4]]), single([[3, 4], [5, 6]]), num_examples=[1, 100])

        # Execute
        result = aggregator(stream, context=AggregationContext())

        # Assert: num_examples does not count in the upstream means.
        assert_weights_equal(result.weights, single([[2.0, 3.0], [4.0, 5.0]]))
        assert result.state is None

    def test_layers_of_different_shapes(self, aggregator):
        stream = updates(layered([1, 2, 3], [[1], [2]]), layered([3, 2, 1], [[5], [8]]))

        result = aggregator(stream, context=AggregationContext())

        assert_weights_equal(result.weights, layered([2.0, 2.0, 2.0], [[3.0], [5.0]]))

    def test_streams_once(self, aggregator):
        stream = CountingUpdates(updates(single([1.0]), single([2.0])))

        aggregator(stream, context=AggregationContext())

        assert stream.iterations == 1

    @given(hnp.arrays(np.int64, st.tuples(st.integers(1, 8), st.integers(1, 10)), elements=st.integers(-1000, 1000)))
    def test_matches_numpy_mean(self, aggregator, rows):
        result = aggregator(updates(*(single(row) for row in rows)), context=AggregationContext())

        np.testing.assert_allclose(result.weights.layers[0], np.mean(rows, axis=0), rtol=1e-12)
