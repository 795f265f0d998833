"""Coordinate-wise median, robust to a minority of arbitrary (Byzantine) updates.

Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
Rates", ICML 2018.
"""

from __future__ import annotations

from fma_core.algorithms._base import aggregators
from fma_core.algorithms._maths import coordinate_median, coordinate_statistic
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


@aggregators.register()
def fed_median(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Median of every coordinate over the updates (the mean of the two middle values for an even count).

    Holds the N updates' values of one layer group at a time (N·G float64 values within the memory budget).

    Parameters
    ----------
    updates : UpdateStream
        At least one update; all of one structure.
    context : AggregationContext
        The model's structure (result dtypes) and memory budget.

    Returns
    -------
    AggregationResult
        The coordinate-wise median in the model's dtypes, with the updates' structure.
    """
    return AggregationResult(weights=coordinate_statistic(updates, context, coordinate_median))
