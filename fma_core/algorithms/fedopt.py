"""FedAdam and FedYogi: server-side adaptive optimizers of the FedOpt family.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar and McMahan, "Adaptive Federated Optimization",
ICLR 2021 (Algorithm 2). The mean client delta ``Δ = mean(w_i) - x`` against the current global model ``x``
is treated as a pseudo-gradient::

    m = beta_1 * m + (1 - beta_1) * Δ
    v = beta_2 * v + (1 - beta_2) * Δ²                    (Adam)
    v = v - (1 - beta_2) * Δ² * sign(v - Δ²)              (Yogi)
    x = x + server_learning_rate * m / (sqrt(v) + tau)

The mean and the step are computed in float64 and the new model has the model's float dtypes; the moments
(float64) are kept whole in memory, 32 bytes a parameter with the model and the mean, whatever N.
The moments start at ``m = 0`` and ``v = tau²`` and are returned as the aggregator state (layers ``m`` then
``v``), which the workflow stores per model and hands back on the next run, so they survive a cold start.
The mean is weighted by ``num_examples`` (a plain mean when every update says 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np

from fma_core.algorithms._base import Range, aggregators
from fma_core.algorithms._maths import weighted_mean
from fma_core.serialization import Structure, Weights, check_same_structure
from fma_core.types import AggregationContext, AggregationResult, UpdateStream

_SecondMoment = Callable[[np.ndarray, np.ndarray, float], np.ndarray]

_LearningRate = Annotated[float, Range(low=0, low_open=True)]
_Decay = Annotated[float, Range(low=0, high=1, high_open=True)]
_Tau = Annotated[float, Range(low=0, low_open=True)]


def _adam_second_moment(v: np.ndarray, squared_delta: np.ndarray, beta_2: float) -> np.ndarray:
    return beta_2 * v + (1 - beta_2) * squared_delta


def _yogi_second_moment(v: np.ndarray, squared_delta: np.ndarray, beta_2: float) -> np.ndarray:
    return v - (1 - beta_2) * squared_delta * np.sign(v - squared_delta)


def _in_dtypes(weights: Weights, model: Structure) -> Weights:
    """The float64 result in the model's float dtypes (integer layers stay float64)."""
    layers = []
    for layer, tensor in zip(weights.layers, model.tensors, strict=False):
        dtype = np.dtype(tensor.dtype)
        layers.append(layer.astype(dtype) if dtype.kind == "f" and dtype != layer.dtype else layer)
    return Weights.like(weights, layers + list(weights.layers[len(layers) :]))


def _moments(current: Weights, state: Weights | None, tau: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The stored (m, v), or fresh ones when there are none or they no longer fit the model's layers."""
    count = len(current.layers)
    if state is not None and state.shapes == current.shapes * 2:
        return list(state.layers[:count]), list(state.layers[count:])
    return (
        [np.zeros(shape, dtype=np.float64) for shape in current.shapes],
        [np.full(shape, tau**2, dtype=np.float64) for shape in current.shapes],
    )


def _fed_opt(
    updates: UpdateStream,
    context: AggregationContext,
    second_moment: _SecondMoment,
    *,
    server_learning_rate: float,
    beta_1: float,
    beta_2: float,
    tau: float,
) -> AggregationResult:
    mean = weighted_mean(updates, lambda update: update.num_examples, context=context, cast=False)
    current = context.current
    if current is None:
        return AggregationResult(weights=_in_dtypes(mean, context.structure or mean.structure))
    check_same_structure(current, mean)
    first, second = _moments(current, context.state, tau)
    layers = []
    # A delta beyond 1e154 squares to inf: the moments are then not finite, and the workflow refuses to store
    # the result and names the updates at fault (fma_core.workflows.aggregation), rather than numpy warning here.
    with np.errstate(over="ignore", invalid="ignore"):
        for index, (x, average) in enumerate(zip(current.layers, mean.layers, strict=True)):
            delta = average - x
            first[index] = beta_1 * first[index] + (1 - beta_1) * delta
            second[index] = second_moment(second[index], np.square(delta), beta_2)
            layers.append(x + server_learning_rate * first[index] / (np.sqrt(second[index]) + tau))
    return AggregationResult(
        weights=_in_dtypes(Weights.like(current, layers), context.structure or current.structure),
        state=Weights(layers=(*first, *second), layered=True),
    )


@aggregators.register()
def fed_adam(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    server_learning_rate: _LearningRate = 0.1,
    beta_1: _Decay = 0.9,
    beta_2: _Decay = 0.99,
    tau: _Tau = 1e-9,
) -> AggregationResult:
    """One Adam step of the global model along the mean client delta; streams one update at a time.

    Without ``context.current`` (no global model yet) this returns the ``num_examples``-weighted mean of the
    updates and no state: there is nothing to take a step from.

    Parameters
    ----------
    updates : UpdateStream
        At least one update; all of the structure of ``context.current``.
    context : AggregationContext
        ``current``: the global model; ``state``: the moments returned by the previous run, or None.
    server_learning_rate : float, default 0.1
        Server step size (eta), > 0.
    beta_1 : float, default 0.9
        Decay of the first moment, in [0, 1).
    beta_2 : float, default 0.99
        Decay of the second moment, in [0, 1).
    tau : float, default 1e-9
        Adaptivity (numerical stability) constant, > 0.

    Returns
    -------
    AggregationResult
        The new global model (the model's dtypes) and the moments ``m`` then ``v`` as state.
    """
    return _fed_opt(
        updates,
        context,
        _adam_second_moment,
        server_learning_rate=server_learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        tau=tau,
    )


@aggregators.register()
def fed_yogi(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    server_learning_rate: _LearningRate = 0.01,
    beta_1: _Decay = 0.9,
    beta_2: _Decay = 0.99,
    tau: _Tau = 1e-3,
) -> AggregationResult:
    """One Yogi step of the global model along the mean client delta; streams one update at a time.

    Yogi's additive second moment grows more slowly than Adam's when deltas are large. Without
    ``context.current`` this returns the ``num_examples``-weighted mean and no state, as ``fed_adam`` does.

    Parameters
    ----------
    updates, context
        As ``fed_adam``.
    server_learning_rate : float, default 0.01
        Server step size (eta), > 0.
    beta_1 : float, default 0.9
        Decay of the first moment, in [0, 1).
    beta_2 : float, default 0.99
        Decay of the second moment, in [0, 1).
    tau : float, default 1e-3
        Adaptivity (numerical stability) constant, > 0.

    Returns
    -------
    AggregationResult
        The new global model (the model's dtypes) and the moments ``m`` then ``v`` as state.
    """
    return _fed_opt(
        updates,
        context,
        _yogi_second_moment,
        server_learning_rate=server_learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        tau=tau,
    )
