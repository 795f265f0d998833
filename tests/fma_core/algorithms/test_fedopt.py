"""fed_adam and fed_yogi: server optimizer steps and their persisted state."""

import numpy as np
import pytest

from fma_core.algorithms.fedopt import fed_adam, fed_yogi
from fma_core.serialization import Weights
from fma_core.tensors import BytesRangeReader, encode_safetensors, load_stored
from fma_core.types import AggregationContext
from tests.fma_core.algorithms.support import CountingUpdates, assert_weights_equal, layered, single, updates


def reference_step(x, mean, m, v, *, yogi, eta, beta_1, beta_2, tau):
    """Algorithm 2 of Reddi et al. (2021) for one array, written out directly."""
    delta = mean - x
    m = beta_1 * m + (1 - beta_1) * delta
    v = v - (1 - beta_2) * delta**2 * np.sign(v - delta**2) if yogi else beta_2 * v + (1 - beta_2) * delta**2
    return x + eta * m / (np.sqrt(v) + tau), m, v


OPTIMIZERS = [(fed_adam, False), (fed_yogi, True)]
ARGS = {"server_learning_rate": 0.5, "beta_1": 0.8, "beta_2": 0.9, "tau": 0.01}


def test_first_adam_step_is_eta_times_the_sign_of_the_delta():
    # Prepare: m = 0.1 Δ and v ≈ 0.01 Δ², so with a tiny tau the step is eta * sign(Δ).
    current = layered([1.0, 1.0], [0.0])
    stream = updates(layered([3.0, -1.0], [0.0]), layered([3.0, -1.0], [0.0]))

    # Execute
    result = fed_adam(stream, context=AggregationContext(current=current))

    # Assert: the zero delta of the second layer leaves it where it was.
    assert result.weights.layered is True
    np.testing.assert_allclose(result.weights.layers[0], [1.1, 0.9], rtol=1e-7)
    np.testing.assert_array_equal(result.weights.layers[1], [0.0])


@pytest.mark.parametrize(("optimizer", "yogi"), OPTIMIZERS)
def test_matches_the_reference_over_two_rounds_with_the_state_persisted(optimizer, yogi):
    # Prepare
    x = np.array([0.5, -1.0, 2.0])
    rounds = [
        ([np.array([1.0, -1.0, 0.0]), np.array([2.0, 0.0, 1.0])], [1, 3]),
        ([np.array([0.0, 4.0, 2.0]), np.array([1.0, 1.0, 1.0])], [2, 2]),
    ]
    m, v = np.zeros(3), np.full(3, ARGS["tau"] ** 2)
    current, state = single(x), None

    for arrays, examples in rounds:
        # Execute: the state goes through its stored (safetensors) form between rounds, as the workflow keeps it.
        result = optimizer(
            updates(*(single(array) for array in arrays), num_examples=examples),
            context=AggregationContext(current=current, state=state),
            **ARGS,
        )
        current, state = result.weights, load_stored(BytesRangeReader(encode_safetensors(result.state)))

        # Assert
        x, m, v = reference_step(
            x,
            np.average(arrays, axis=0, weights=examples),
            m,
            v,
            yogi=yogi,
            eta=ARGS["server_learning_rate"],
            beta_1=ARGS["beta_1"],
            beta_2=ARGS["beta_2"],
            tau=ARGS["tau"],
        )
        np.testing.assert_allclose(current.layers[0], x, rtol=1e-12)
        assert current.layered is False
        np.testing.assert_allclose(state.layers[0], m, rtol=1e-12)
        np.testing.assert_allclose(state.layers[1], v, rtol=1e-12)


@pytest.mark.parametrize(("optimizer", "yogi"), OPTIMIZERS)
def test_state_holds_m_then_v_for_every_layer(optimizer, yogi):
    current = layered([[0.0, 0.0]], [0.0, 0.0, 0.0])

    result = optimizer(updates(layered([[1.0, 2.0]], [3.0, 4.0, 5.0])), context=AggregationContext(current=current))

    assert result.state.layered is True
    assert result.state.shapes == ((1, 2), (3,), (1, 2), (3,))


@pytest.mark.parametrize(("optimizer", "yogi"), OPTIMIZERS)
def test_state_of_another_structure_is_ignored(optimizer, yogi):
    current = single([0.0, 0.0])
    stream = updates(single([1.0, 3.0]))
    foreign_state = Weights(layers=(np.ones(5), np.ones(5)), layered=True)

    fresh = optimizer(stream, context=AggregationContext(current=current), **ARGS)
    with_foreign = optimizer(stream, context=AggregationContext(current=current, state=foreign_state), **ARGS)

    assert_weights_equal(with_foreign.weights, fresh.weights)


@pytest.mark.parametrize(("optimizer", "yogi"), OPTIMIZERS)
def test_without_a_global_model_is_the_weighted_mean(optimizer, yogi):
    stream = updates(single([0.0]), single([4.0]), num_examples=[3, 1])

    result = optimizer(stream, context=AggregationContext())

    assert_weights_equal(result.weights, single([1.0]))
    assert result.state is None


def test_yogi_second_moment_shrinks_additively_where_adam_decays():
    # Prepare: a delta of 10 then one of 0.1, with beta_2 = 0.9.
    current = single([0.0])
    first = {"updates": updates(single([10.0])), "context": AggregationContext(current=current)}
    adam_1, yogi_1 = fed_adam(**first, **ARGS), fed_yogi(**first, **ARGS)

    # Execute
    adam_2 = fed_adam(
        updates(single([adam_1.weights.layers[0][0] + 0.1])),
        context=AggregationContext(adam_1.weights, adam_1.state),
        **ARGS,
    )
    yogi_2 = fed_yogi(
        updates(single([yogi_1.weights.layers[0][0] + 0.1])),
        context=AggregationContext(yogi_1.weights, yogi_1.state),
        **ARGS,
    )

    # Assert: v ≈ 0.1 * 10² = 10 after round 1 for both; then Adam 0.9 * 10 + 0.1 * 0.01, Yogi 10 - 0.1 * 0.01.
    np.testing.assert_allclose(adam_1.state.layers[1], [10.0], rtol=1e-4)
    np.testing.assert_allclose(yogi_1.state.layers[1], [10.0], rtol=1e-4)
    np.testing.assert_allclose(adam_2.state.layers[1], [9.001], rtol=1e-4)
    np.testing.assert_allclose(yogi_2.state.layers[1], [9.999], rtol=1e-4)


@pytest.mark.parametrize(("optimizer", "yogi"), OPTIMIZERS)
def test_streams_once(optimizer, yogi):
    stream = CountingUpdates(updates(single([1.0]), single([2.0])))

    optimizer(stream, context=AggregationContext(current=single([0.0])))

    assert stream.iterations == 1
