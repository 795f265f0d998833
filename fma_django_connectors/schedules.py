"""Per-model aggregation schedules: an EventBridge rule per model remotely, nothing locally.

``settings.FMA_SCHEDULER`` picks the scheduler: ``"none"`` (the local default, where the in-process
trigger aggregates) or ``"eventbridge"``. The EventBridge rule ``fma-scheduled-<model id>`` fires
``FMA_SCHEDULE_EXPRESSION`` (default ``rate(1 minute)``) at ``AGGREGATOR_LAMBDA_ARN`` with the
scheduled-event input ``{"detail": {"model_id": <id>}}``, and is ENABLED exactly while the model's
``allow_aggregation`` is true. It sweeps up anything an update's direct trigger missed.

Errors: the database is the source of truth, the rule only a trigger. An AWS failure raises
``ScheduleUnavailableError`` (HTTP 503 with a JSON ``detail``); the API's services call these functions
inside their transaction, so the model write is rolled back and the caller may simply retry. A rule
left behind by a half-done call is harmless: the aggregator itself skips models that do not allow
aggregation, and the next successful sync puts the rule right.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException

from fma_core.registry import Registry
from fma_django_connectors.models import FederatedModel

__all__ = ["ScheduleUnavailableError", "rule_name", "schedule_remove", "schedule_sync", "schedulers"]

# Id of the single target each rule has; fixed so that a resync replaces it instead of adding one.
TARGET_ID = "fma-aggregator"


class ScheduleUnavailableError(APIException):
    """The schedule could not be changed in AWS; nothing was saved (503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "schedule_unavailable"


class Scheduler(Protocol):
    """A way of scheduling aggregations, registered in ``schedulers`` under the name ``FMA_SCHEDULER`` uses."""

    def sync(self, *, model_id: int, enabled: bool) -> None: ...

    def remove(self, *, model_id: int) -> None: ...


schedulers: Registry[Scheduler] = Registry("scheduler")


def rule_name(model_id: int) -> str:
    """Name of the EventBridge rule of model ``model_id``."""
    return f"fma-scheduled-{model_id}"


def schedule_sync(*, model: FederatedModel) -> None:
    """Create, enable or disable ``model``'s schedule to match ``allow_aggregation``."""
    _scheduler().sync(model_id=model.pk, enabled=model.allow_aggregation)


def schedule_remove(*, model_id: int) -> None:
    """Remove the schedule of a deleted model (no schedule is fine)."""
    _scheduler().remove(model_id=model_id)


def _scheduler() -> Scheduler:
    return schedulers.get(settings.FMA_SCHEDULER, setting="FMA_SCHEDULER")


class _NoScheduler:
    def sync(self, *, model_id: int, enabled: bool) -> None:
        pass

    def remove(self, *, model_id: int) -> None:
        pass


class _EventBridgeScheduler:
    def sync(self, *, model_id: int, enabled: bool) -> None:
        name = rule_name(model_id)
        with _aws_errors(f"Could not update the aggregation schedule {name}"):
            client = _events_client(os.environ.get("AWS_REGION"), os.environ.get("AWS_ENDPOINT_URL"))
            client.put_rule(
                Name=name,
                ScheduleExpression=settings.FMA_SCHEDULE_EXPRESSION,
                State="ENABLED" if enabled else "DISABLED",
                Description=f"FMA: aggregate federated model {model_id}",
            )
            client.put_targets(
                Rule=name,
                Targets=[
                    {
                        "Id": TARGET_ID,
                        "Arn": settings.AGGREGATOR_LAMBDA_ARN,
                        "Input": json.dumps({"detail": {"model_id": model_id}}),
                    }
                ],
            )

    def remove(self, *, model_id: int) -> None:
        name = rule_name(model_id)
        with _aws_errors(f"Could not remove the aggregation schedule {name}"):
            client = _events_client(os.environ.get("AWS_REGION"), os.environ.get("AWS_ENDPOINT_URL"))
            try:
                targets = client.list_targets_by_rule(Rule=name)["Targets"]
            except client.exceptions.ResourceNotFoundException:
                return
            # A rule with targets cannot be deleted; remove every target, ours and any added by hand.
            if targets:
                client.remove_targets(Rule=name, Ids=[target["Id"] for target in targets])
            client.delete_rule(Name=name)


schedulers.register("none")(_NoScheduler())
schedulers.register("eventbridge")(_EventBridgeScheduler())


@cache
def _events_client(region_name: str | None, endpoint_url: str | None) -> Any:
    # Built on first use and kept: boto3 is slow to import and create, and local runs never need it.
    import boto3

    return boto3.client("events", region_name=region_name, endpoint_url=endpoint_url)


@contextmanager
def _aws_errors(message: str) -> Iterator[None]:
    """Turn boto3 failures into ``ScheduleUnavailableError`` starting with ``message``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ScheduleUnavailableError(
            f"{message}: {error.get('Code', 'error')} {error.get('Message', '')}".strip()
        ) from exc
    except BotoCoreError as exc:
        raise ScheduleUnavailableError(f"{message}: {exc}") from exc
