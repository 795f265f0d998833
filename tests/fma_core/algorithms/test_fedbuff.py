"""fedbuff: the staleness-weighted mean."""

import math

import numpy as np

from fma_core.algorithms.fedbuff import fedbuff
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import CountingUpdates, assert_weights_equal, single, updates


def test_stale_updates_count_less():
    # Prepare: weights 1/sqrt(1) = 1 and 1/sqrt(1 + 3) = 1/2.
    stream = updates(single([0.0, 6.0]), single([3.0, 0.0]), staleness=[0, 3])

    # Execute
    result = fedbuff(stream, context=AggregationContext())

    # Assert: (1*0 + 0.5*3)/1.5 = 1, (1*6 + 0)/1.5 = 4
    assert_weights_equal(result.weights, single([1.0, 4.0]))


def test_num_examples_and_staleness_combine():
    stream = updates(single([2.0]), single([5.0]), single([11.0]), num_examples=[2, 4, 1], staleness=[0, 8, 0])
    weights = np.array([2 / math.sqrt(1), 4 / math.sqrt(9), 1 / math.sqrt(1)])

    result = fedbuff(stream, context=AggregationContext())

    np.testing.assert_allclose(result.weights.layers[0], [np.average([2.0, 5.0, 11.0], weights=weights)], rtol=1e-12)


def test_without_staleness_equals_fed_avg_weights():
    result = fedbuff(updates(single([1.0]), single([4.0]), num_examples=[2, 1]), context=AggregationContext())

    assert_weights_equal(result.weights, single([2.0]))


def test_streams_once():
    stream = CountingUpdates(updates(single([1.0]), single([2.0]), staleness=[1, 0]))

    fedbuff(stream, context=AggregationContext())

    assert stream.iterations == 1
