"""Lambda entry point of the aggregator: ``handler(event, context)`` → the new aggregate id, or None.

Two events start an aggregation of one model:

- ``{"detail": {"model_id": N}}``: the model's schedule (EventBridge Scheduler);
- ``{"model_id": N}``: a direct, asynchronous invoke by the API service when an update arrives.

After the run, the model's schedule is settled: disabled when nothing is left pending.

A deploy sends ``{"detail": "update_metadata_db"}`` here to migrate the database (``operations``):
this function's long timeout lets a long migration finish, where the API's 30 s would cut it off. Each deploy
then sends ``{"detail": "delete_orphan_results"}``, to delete the result files no aggregate records (listing
the results folder: too costly for every run, which deletes a dead run's file by its name), and
``{"detail": "migrate_schedules"}``, to replace the EventBridge rules of earlier versions by the
deployment's schedules. A SAM deploy sends all of them, and ``bootstrap_admin``, as a CloudFormation custom
resource request (``operations.answer_custom_resource``), which is always answered at its ``ResponseURL``.

Anything else is rejected by value.
"""

from __future__ import annotations

import logging
from typing import Any

from cold_start import setup_django

setup_django()

from fma_core.connectors.base import ModelNotFoundError  # noqa: E402  (needs Django set up)
from fma_core.connectors.factory import connector_from_settings  # noqa: E402
from fma_core.workflows.aggregation import agg_service  # noqa: E402
from fma_django_connectors.aggregation.schedules import schedule_settle  # noqa: E402
from operations import (  # noqa: E402
    MIGRATION_REQUEST,
    ORPHAN_RESULTS_REQUEST,
    SCHEDULES_MIGRATION_REQUEST,
    answer_custom_resource,
    delete_orphan_results,
    is_custom_resource_event,
    migrate_metadata_db,
    migrate_schedules,
)

__all__ = ["handler"]

logger = logging.getLogger(__name__)

# Built at cold start, so that a connector name AGGREGATOR_SETTINGS gets wrong stops the start-up.
_connector = connector_from_settings()


def _is_scheduled_event(event: dict[str, Any]) -> bool:
    return isinstance(event.get("detail"), dict) and "model_id" in event["detail"]


def _is_direct_event(event: dict[str, Any]) -> bool:
    return "model_id" in event


def _model_id(value: Any, event: dict[str, Any]) -> int:
    # JSON has no integer type of its own: accept 7, not 7.5, "7" or true.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"model_id must be an integer, got {value!r} in event {event!r}")
    return value


def handler(event: dict[str, Any], context: Any) -> int | dict[str, Any] | None:
    """Run one aggregation of the model the event names (or a deploy-time event)."""
    if not isinstance(event, dict):
        raise ValueError(f"Unsupported event for the aggregator: {event!r}")
    if _is_scheduled_event(event):
        model_id = _model_id(event["detail"]["model_id"], event)
    elif _is_direct_event(event):
        model_id = _model_id(event["model_id"], event)
    elif event.get("detail") == MIGRATION_REQUEST:
        return migrate_metadata_db()
    elif event.get("detail") == ORPHAN_RESULTS_REQUEST:
        return delete_orphan_results()
    elif event.get("detail") == SCHEDULES_MIGRATION_REQUEST:
        return migrate_schedules()
    elif is_custom_resource_event(event):
        return answer_custom_resource(event, context)
    else:
        raise ValueError(f"Unsupported event for the aggregator: {event!r}")
    try:
        aggregate_id = agg_service(model_id, connector=_connector)
    except ModelNotFoundError:
        # A schedule or invoke can outlive its model by a moment; there is nothing left to aggregate.
        logger.warning("model %s no longer exists; nothing to aggregate", model_id)
        return None
    # The schedule runs only while work is left (docs/aggregation.md); a failure here is raised, so it is seen.
    schedule_settle(model_id=model_id)
    return aggregate_id
