"""Coordinate-wise trimmed mean: drop the extremes of every coordinate, average the rest.

Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
Rates", ICML 2018.
"""

from __future__ import annotations

import math
from typing import Annotated

from fma_core.algorithms._base import Range, aggregators
from fma_core.algorithms._maths import coordinate_statistic, coordinate_trimmed_mean
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


@aggregators.register()
def fed_trimmed_mean(
    updates: UpdateStream,
    *,
    context: AggregationContext,
    beta: Annotated[float, Range(low=0, high=0.5, high_open=True)] = 0.1,
) -> AggregationResult:
    """Per coordinate, the mean of the values left after removing the ``floor(beta * N)`` smallest and largest.

    Holds the N updates' values of one layer group at a time (N·G float64 values within the memory budget).

    Parameters
    ----------
    updates : UpdateStream
        At least one update; all of one structure.
    context : AggregationContext
        The model's structure (result dtypes) and memory budget.
    beta : float, default 0.1
        Fraction trimmed at each end, in [0, 0.5); 0 gives the plain mean.

    Returns
    -------
    AggregationResult
        The trimmed mean in the model's dtypes, with the updates' structure.
    """
    # Rounded first so that e.g. 0.29 * 100 = 28.999999999999996 trims 29, as floor(beta * N) says.
    trim = math.floor(round(beta * len(updates), 9))
    return AggregationResult(
        weights=coordinate_statistic(updates, context, lambda rows: coordinate_trimmed_mean(rows, trim))
    )
