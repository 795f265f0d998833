"""``manage.py run_aggregator``: a worker that aggregates models that allow it, in a loop."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from fma_core.connectors.base import AggregatorConnector
from fma_core.connectors.factory import connector_from_settings
from fma_core.workflows.aggregation import agg_service
from fma_django_connectors.models import FederatedModel

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run the aggregation of every model with allow_aggregation (or of one model) now, "
        "then again every --interval seconds, until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Make one pass over the models and stop.")
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between passes (default 60).")
        parser.add_argument("--model", type=int, metavar="ID", help="Aggregate only this model.")

    def handle(self, *args: Any, once: bool, interval: float, model: int | None, **options: Any) -> None:
        # Built before the first pass: wrong AGGREGATOR_SETTINGS stop the worker at once.
        connector = connector_from_settings()
        while True:
            self._one_pass(model, connector)
            if once:
                return
            time.sleep(interval)
            # A long-running worker must not hold on to a connection the database has since dropped.
            close_old_connections()

    def _one_pass(self, model_id: int | None, connector: AggregatorConnector) -> None:
        if model_id is None:
            model_ids = list(FederatedModel.objects.filter(allow_aggregation=True).values_list("pk", flat=True))
        else:
            model_ids = [model_id]
        for pk in model_ids:
            try:
                aggregate_id = agg_service(pk, connector=connector)
            except Exception as error:
                logger.exception("model %s: aggregation failed", pk)
                self.stderr.write(f"model {pk}: {error}")
                continue
            if aggregate_id is not None:
                self.stdout.write(f"model {pk}: new aggregate {aggregate_id}")
