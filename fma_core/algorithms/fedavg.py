"""FedAvg: mean of the client models weighted by their number of training examples.

McMahan, Moore, Ramage, Hampson and Agüera y Arcas, "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017.
"""

from __future__ import annotations

from fma_core.algorithms._base import aggregators
from fma_core.algorithms._maths import weighted_mean
from fma_core.types import AggregationContext, AggregationResult, UpdateStream


@aggregators.register()
def fed_avg(updates: UpdateStream, *, context: AggregationContext) -> AggregationResult:
    """Mean of the updates weighted by ``num_examples``; streams one update at a time
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
        ``sum(n_i * w_i) / sum(n_i)`` in the model's dtypes, with the updates' structure.
    """
    return AggregationResult(weights=weighted_mean(updates, lambda update: update.num_examples, context=context))
