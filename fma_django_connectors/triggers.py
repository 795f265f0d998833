"""What happens when a model update is stored: ask for an aggregation of its model."""

from __future__ import annotations


def request_aggregation(*, model_id: int) -> None:
    """Ask for an aggregation of ``model_id`` (selected by settings; see the aggregation docs)."""
