"""Plain means, under the names FMA has always used (Capital One, federated-model-aggregation).

Both give the unweighted mean of the updates: ``avg_values_if_data`` element-wise over the whole weights
document, ``average_layers`` layer by layer (layers may differ in shape). With layers stored as arrays the
two compute the same numbers; both names stay so that existing models keep working.
"""

from __future__ import annotations

from fma_core.algorithms._base import aggregators
from fma_core.algorithms._maths import weighted_mean
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


@aggregators.register()
def avg_values_if_data(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Element-wise mean of the updates, ignoring ``num_examples``; streams one update at a time
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
        The mean in the model's dtypes, with the updates' structure.
    """
    return AggregationResult(weights=weighted_mean(updates, context=context))


@aggregators.register()
def average_layers(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Mean of the updates layer by layer, ignoring ``num_examples``; streams one update at a time
    (one pass per layer group).

    Parameters and returns as ``avg_values_if_data``.
    """
    return AggregationResult(weights=weighted_mean(updates, context=context))
