"""No aggregate, and no aggregator state, holding NaN or ±Inf is ever stored, whatever finite updates arrive."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fma_core.algorithms import aggregators
from fma_core.algorithms._maths import coordinate_median, coordinate_trimmed_mean, weighted_mean
from fma_core.serialization import Weights
from fma_core.types import AggregationContext, ClientUpdate
from tests.fma_core.connectors.memory import COMPLETE, INVALID, PENDING
from tests.fma_core.workflows.test_aggregation import MODEL_ID, World

HUGE = 1.7e308
# Arguments that let every aggregator run on three updates (Krum needs 2f + 3).
ARGUMENTS = {"krum": {"f": 0}, "multi_krum": {"f": 0}, "fed_trimmed_mean": {"beta": 0.34}}


def _every_aggregator():
    return sorted(aggregators.names())


@pytest.mark.parametrize("aggregator", _every_aggregator())
@pytest.mark.parametrize("with_current_model", [False, True], ids=["first-round", "from-a-global-model"])
def test_updates_whose_sum_overflows_never_store_a_non_finite_value(aggregator, with_current_model):
    # Prepare: three accepted, finite updates whose plain sum is inf.
    world = World(aggregator=aggregator, aggregator_args=ARGUMENTS.get(aggregator))
    if with_current_model:
        world.aggregate(0.0, 0.0)
    updates = [world.update(client, HUGE, 1.0) for client in "abc"]

    # Execute
    aggregate_id = world.run()

    # Assert: a finite aggregate of the updates (the means keep HUGE), or none and every update INVALID with a
    # reason naming the model; a stored aggregator state is finite.
    for state in world.data.states.values():
        assert all(np.isfinite(layer).all() for layer in state.layers)
    if aggregate_id is None:
        assert [update.status for update in updates] == [INVALID] * 3
        assert all(f"model {MODEL_ID}: {aggregator} gave a non-finite" in u.status_reason for u in updates)
        assert len(world.metadata.aggregates) == int(with_current_model)
    else:
        result = world.result(aggregate_id)
        assert np.isfinite(result).all()
        assert [update.status for update in updates] == [COMPLETE] * 3
        if not aggregator.startswith("fed_adam") and not aggregator.startswith("fed_yogi"):
            assert result == [HUGE, 1.0]


def test_only_the_update_that_makes_the_result_non_finite_is_invalid_and_the_others_go_on():
    # Prepare: FedAdam squares the delta against the global model: one client's delta overflows it.
    world = World(aggregator="fed_adam")
    world.aggregate(0.0, 0.0)
    honest = [world.update(client, 1.0, 2.0) for client in "ab"]
    poisoned = world.update("c", HUGE, 1.0)

    # Execute
    assert world.run() is None
    after_rejection = [update.status for update in (*honest, poisoned)]
    aggregate_id = world.run()

    # Assert
    assert after_rejection == [PENDING, PENDING, INVALID]
    assert "model 1: fed_adam gave a non-finite state" in poisoned.status_reason
    assert [update.status for update in honest] == [COMPLETE, COMPLETE]
    assert all(update.status_reason == "" for update in honest)
    assert np.isfinite(world.result(aggregate_id)).all()
    assert all(np.isfinite(layer).all() for layer in world.data.states[MODEL_ID].layers)


LARGEST = float(np.finfo(np.float64).max)
extreme = st.one_of(
    st.floats(min_value=-LARGEST, max_value=LARGEST),
    st.sampled_from([LARGEST, -LARGEST, HUGE, -HUGE, 5e-324, -5e-324, 0.0]),
)
matrices = st.integers(min_value=1, max_value=6).flatmap(
    lambda width: st.lists(st.lists(extreme, min_size=width, max_size=width), min_size=1, max_size=7)
)


def _stream(rows, examples=None):
    return [
        ClientUpdate(weights=Weights(layers=(np.asarray(row, dtype=np.float64),), layered=False), num_examples=n)
        for row, n in zip(rows, examples or [1] * len(rows), strict=True)
    ]


def _within_the_updates(result, rows):
    """Finite, and between the smallest and largest value of each coordinate, give or take rounding."""
    matrix = np.asarray(rows, dtype=np.float64)
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    assert np.isfinite(result).all()
    with np.errstate(over="ignore"):
        assert (result >= low - np.abs(low) * 1e-12 - 1e-300).all()
        assert (result <= high + np.abs(high) * 1e-12 + 1e-300).all()


@given(rows=matrices, data=st.data())
def test_a_weighted_mean_of_extreme_finite_values_is_finite_and_between_them(rows, data):
    examples = data.draw(st.lists(st.integers(1, 2**31 - 1), min_size=len(rows), max_size=len(rows)))
    mean = weighted_mean(_stream(rows, examples), lambda update: update.num_examples, context=AggregationContext())
    _within_the_updates(mean.layers[0], rows)


@given(rows=matrices)
# Three values whose thirds add up one rounding step past the largest float64.
@example(rows=[[5.99231045e307]] * 3)
def test_a_median_and_a_trimmed_mean_of_extreme_finite_values_are_finite_and_between_them(rows):
    matrix = np.asarray(rows, dtype=np.float64)
    _within_the_updates(coordinate_median(matrix.copy()), rows)
    for trim in range((len(rows) - 1) // 2 + 1):
        _within_the_updates(coordinate_trimmed_mean(matrix.copy(), trim), rows)
