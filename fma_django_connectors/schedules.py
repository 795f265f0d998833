"""Per-model aggregation schedules (EventBridge rules remotely; nothing locally)."""

from __future__ import annotations

from fma_django_connectors.models import FederatedModel


def schedule_sync(*, model: FederatedModel) -> None:
    """Create, enable or disable ``model``'s schedule to match ``allow_aggregation``."""


def schedule_remove(*, model_id: int) -> None:
    """Remove the schedule of a deleted model."""
