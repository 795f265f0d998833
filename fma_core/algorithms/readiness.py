"""Requirements: whether a model's eligible pending updates are ready to be aggregated now.

``all_clients`` and ``require_x_updates`` keep the names (and positional arguments) FMA has always used;
``require_x_updates_or_seconds`` stops stragglers from stalling a model forever.
"""

from __future__ import annotations

from typing import Annotated

from fma_core.algorithms._base import Range, requirements
from fma_core.types import PendingSummary


@requirements.register()
def all_clients(summary: PendingSummary) -> bool:
    """Every client registered to the model has an eligible pending update (and there is at least one)."""
    return summary.pending_updates > 0 and summary.clients_with_pending >= summary.registered_clients


@requirements.register()
def require_x_updates(summary: PendingSummary, *, num_updates: Annotated[int, Range(low=1)]) -> bool:
    """At least ``num_updates`` eligible pending updates.

    Parameters
    ----------
    summary : PendingSummary
        The model's pending updates.
    num_updates : int
        Threshold, ≥ 1; required (``requirement_args`` ``[3]`` or ``{"num_updates": 3}``).
    """
    return summary.pending_updates >= num_updates


@requirements.register()
def require_x_updates_or_seconds(
    summary: PendingSummary,
    *,
    num_updates: Annotated[int, Range(low=1)],
    seconds: Annotated[float, Range(low=0)],
) -> bool:
    """At least ``num_updates`` eligible pending updates, or the oldest one has waited ``seconds`` or longer.

    Parameters
    ----------
    summary : PendingSummary
        The model's pending updates.
    num_updates : int
        Threshold, ≥ 1; required.
    seconds : float
        Longest wait of a pending update before it is aggregated with whatever else is pending, ≥ 0; required.
    """
    if summary.pending_updates >= num_updates:
        return True
    age = summary.oldest_pending_age_seconds
    return summary.pending_updates > 0 and age is not None and age >= seconds
