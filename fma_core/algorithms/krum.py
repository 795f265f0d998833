"""Krum and Multi-Krum: keep the updates closest to their neighbours, tolerating ``f`` Byzantine clients.

Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
Descent", NeurIPS 2017. Each update is scored by the sum of squared distances to its ``N - f - 2`` nearest
other updates; Krum returns the best-scored update, Multi-Krum the mean of the ``m`` best-scored ones.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from fma_core.algorithms._base import Range, aggregators
from fma_core.algorithms._maths import pairwise_squared_distances, stack, unflatten
from fma_core.exceptions import InvalidArgumentsError
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


def _krum_scores(rows: np.ndarray, f: int, name: str) -> np.ndarray:
    count = rows.shape[0]
    if count < 2 * f + 3:
        raise InvalidArgumentsError(
            f"{name} with f={f} needs at least 2f + 3 = {2 * f + 3} updates, got {count}; lower 'f' or "
            f"let the model's requirement wait for {2 * f + 3} updates (e.g. require_x_updates)"
        )
    distances = pairwise_squared_distances(rows)
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

    Holds all N updates in memory at once (N·P float64 values).

    Parameters
    ----------
    updates : UpdateStream
        At least ``2f + 3`` updates; all of one structure.
    context : AggregationContext
        Unused.
    f : int
        Number of Byzantine (arbitrarily wrong) clients to tolerate, ≥ 0; required.

    Returns
    -------
    AggregationResult
        The selected update as float64 (the first one on a tie), with the updates' structure.

    Raises
    ------
    InvalidArgumentsError
        Fewer than ``2f + 3`` updates.
    """
    template, rows = stack(updates)
    scores = _krum_scores(rows, f, "krum")
    return AggregationResult(weights=unflatten(template, rows[int(np.argmin(scores))]))


@aggregators.register()
def multi_krum(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    f: Annotated[int, Range(low=0)],
    m: Annotated[int | None, Range(low=1)] = None,
) -> AggregationResult:
    """Unweighted mean of the ``m`` updates with the lowest Krum scores.

    Holds all N updates in memory at once (N·P float64 values).

    Parameters
    ----------
    updates : UpdateStream
        At least ``2f + 3`` updates; all of one structure.
    context : AggregationContext
        Unused.
    f : int
        Number of Byzantine clients to tolerate, ≥ 0; required.
    m : int or None, default None
        How many updates to average, 1 ≤ m ≤ N - f; None means ``N - f``. ``m = 1`` is Krum.

    Returns
    -------
    AggregationResult
        The mean of the selected updates as float64, with the updates' structure.

    Raises
    ------
    InvalidArgumentsError
        Fewer than ``2f + 3`` updates, or ``m`` greater than ``N - f``.
    """
    template, rows = stack(updates)
    scores = _krum_scores(rows, f, "multi_krum")
    honest = rows.shape[0] - f
    if m is None:
        m = honest
    elif m > honest:
        raise InvalidArgumentsError(
            f"multi_krum with f={f} can average at most N - f = {honest} of {rows.shape[0]} updates, "
            f"got m={m}; lower 'm' or leave it null"
        )
    # The mean as a product with a selection vector, so the m selected rows are never copied.
    share = np.zeros(rows.shape[0])
    share[np.argsort(scores, kind="stable")[:m]] = 1.0 / m
    return AggregationResult(weights=unflatten(template, share @ rows))
