"""``DjangoAggConnector``: the Django metadata and model-data connectors, bound for one aggregation."""

from __future__ import annotations

from fma_core.connectors.base import AggregatorConnector


class DjangoAggConnector(AggregatorConnector):
    """Aggregation over the Django ORM and Django storage (the connectors ``AGGREGATOR_SETTINGS`` names)."""
