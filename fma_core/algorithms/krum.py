"""Krum and Multi-Krum: keep the updates closest to their neighbours, tolerating ``f`` Byzantine clients.

Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
Descent", NeurIPS 2017. Each update is scored by the sum of squared distances to its ``N - f - 2`` nearest
other updates; Krum returns the best-scored update, Multi-Krum the mean of the ``m`` best-scored ones.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from fma_core.algorithms._base import Range, aggregators
from fma_core.algorithms._maths import LayerGroups, SelectedUpdates, update_distances, weighted_mean
from fma_core.exceptions import InvalidArgumentsError
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


def _krum_scores(updates: UpdateStream, context: AggregationContext, f: int, name: str) -> np.ndarray:
    count = len(updates)
    if count < 2 * f + 3:
        raise InvalidArgumentsError(
            f"{name} with f={f} needs at least 2f + 3 = {2 * f + 3} updates, got {count}; lower 'f' or "
            f"let the model's requirement wait for {2 * f + 3} updates (e.g. require_x_updates)"
        )
    # Distances between whole updates are sums over layer groups, so no more than a group is stacked at once.
    distances = update_distances(updates, context)
    # Column 0 of each sorted row is the update's zero distance to itself.
    nearest = np.sort(distances, axis=1)[:, 1 : count - f - 1]
    return nearest.sum(axis=1)


@aggregators.register()
def krum(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    f: Annotated[int, Range(low=0)],
) -> AggregationResult:
    """The single update with the lowest Krum score.

    Stacks the N updates' values of one layer group at a time (within the memory budget) for the distances.

    Parameters
    ----------
    updates : UpdateStream
        At least ``2f + 3`` updates; all of one structure.
    context : AggregationContext
        The model's structure (result dtypes) and memory budget.
    f : int
        Number of Byzantine (arbitrarily wrong) clients to tolerate, ≥ 0; required.

    Returns
    -------
    AggregationResult
        The selected update in the model's dtypes (the first one on a tie), with the updates' structure.

    Raises
    ------
    InvalidArgumentsError
        Fewer than ``2f + 3`` updates.
    """
    scores = _krum_scores(updates, context, f, "krum")
    chosen = next(iter(SelectedUpdates(updates, [int(np.argmin(scores))])))
    # Only for the structure and the result dtypes: the chosen update is copied whole, no group is stacked.
    grouped = LayerGroups(updates, context, bytes_per_parameter=0)
    layers = [grouped.cast(index, chosen.weights.tensor(index)) for index in range(len(grouped.template.tensors))]
    return AggregationResult(weights=grouped.weights(layers))


@aggregators.register()
def multi_krum(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    f: Annotated[int, Range(low=0)],
    m: Annotated[int | None, Range(low=1)] = None,
) -> AggregationResult:
    """Unweighted mean of the ``m`` updates with the lowest Krum scores.

    Stacks the N updates' values of one layer group at a time (within the memory budget) for the distances,
    then streams the mean of the selected updates.

    Parameters
    ----------
    updates : UpdateStream
        At least ``2f + 3`` updates; all of one structure.
    context : AggregationContext
        The model's structure (result dtypes) and memory budget.
    f : int
        Number of Byzantine clients to tolerate, ≥ 0; required.
    m : int or None, default None
        How many updates to average, 1 ≤ m ≤ N - f; None means ``N - f``. ``m = 1`` is Krum.

    Returns
    -------
    AggregationResult
        The mean of the selected updates in the model's dtypes, with the updates' structure.

    Raises
    ------
    InvalidArgumentsError
        Fewer than ``2f + 3`` updates, or ``m`` greater than ``N - f``.
    """
    count = len(updates)
    honest = count - f
    if m is not None and m > honest and count >= 2 * f + 3:
        raise InvalidArgumentsError(
            f"multi_krum with f={f} can average at most N - f = {honest} of {count} updates, "
            f"got m={m}; lower 'm' or leave it null"
        )
    scores = _krum_scores(updates, context, f, "multi_krum")
    best = np.argsort(scores, kind="stable")[: honest if m is None else m]
    return AggregationResult(weights=weighted_mean(SelectedUpdates(updates, best.tolist()), context=context))
