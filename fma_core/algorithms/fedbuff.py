"""FedBuff aggregation: a buffered asynchronous mean in which stale updates count less.

Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek and Huba, "Federated Learning with Buffered Asynchronous
Aggregation", AISTATS 2022. An update's staleness is the number of aggregates made between the aggregate it
was trained from and the newest one; its weight is ``num_examples / sqrt(1 + staleness)``.
"""

from __future__ import annotations

import math

from fma_core.algorithms._base import aggregators
from fma_core.algorithms._maths import weighted_mean
from fma_core.types import AggregationContext, AggregationResult, ClientUpdate, UpdateStream


def _staleness_weight(update: ClientUpdate) -> float:
    return update.num_examples / math.sqrt(1 + update.staleness)


@aggregators.register()
def fedbuff(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Mean of the updates weighted by ``num_examples / sqrt(1 + staleness)``; streams one update at a time
    (one pass per layer group).

    Parameters
    ----------
    updates : UpdateStream
        At least one update; all of one structure.
    context : AggregationContext
        The model's structure (result dtypes) and memory budget.

    Returns
    -------
    AggregationResult
        The staleness-weighted mean in the model's dtypes, with the updates' structure.
    """
    return AggregationResult(weights=weighted_mean(updates, _staleness_weight, context=context))
