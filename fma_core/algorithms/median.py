"""Coordinate-wise median, robust to a minority of arbitrary (Byzantine) updates.

Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
Rates", ICML 2018.
"""

from __future__ import annotations

from fma_core.algorithms._base import aggregators
from fma_core.algorithms._maths import coordinate_median, stack, unflatten
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


@aggregators.register()
def fed_median(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Median of every coordinate over the updates (the mean of the two middle values for an even count).

    Holds all N updates in memory at once (N·P float64 values).

    Parameters
    ----------
    updates : UpdateStream
        At least one update; all of one structure.
    context : AggregationContext
        Unused.

    Returns
    -------
    AggregationResult
        The coordinate-wise median as float64, with the updates' structure.
    """
    template, rows = stack(updates)
    return AggregationResult(weights=unflatten(template, coordinate_median(rows)))
