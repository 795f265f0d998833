"""``DjangoAggConnector``: the Django metadata and model-data connectors, bound for one aggregation."""

from __future__ import annotations

from fma_core.connectors.base import AggregatorConnector
from fma_core.connectors.factory import aggregator_connectors


@aggregator_connectors.register()
class DjangoAggConnector(AggregatorConnector):
    """Aggregation over the Django ORM and Django storage (the connectors ``AGGREGATOR_SETTINGS`` names)."""
