"""Per-model aggregation schedules: an EventBridge rule per model remotely, nothing locally.

``FMA_SCHEDULER`` picks the scheduler: ``"none"`` (the local default, where the in-process
trigger aggregates) or ``"eventbridge"``. The EventBridge rule ``fma-scheduled-<model id>`` fires
``FMA_SCHEDULE_EXPRESSION`` (default ``rate(1 minute)``) at ``AGGREGATOR_LAMBDA_ARN`` with the
scheduled-event input ``{"detail": {"model_id": <id>}}``. It sweeps up anything an update's direct
trigger missed, and so it only needs to run while there is something to sweep: it is ENABLED exactly
while the model allows aggregation *and* has pending work (``selectors.model_has_pending_work``), so an
idle model costs no invocation at all.

- ``schedule_sync``: the model was created or changed (API, admin): rule and target put in full.
- ``schedule_wake``: an update was stored: the rule is enabled, best effort (the update is saved already).
- ``schedule_settle``: an aggregation ran: the rule is disabled if it left nothing pending.
- ``schedule_remove``: the model was deleted.

Why no update is ever left without a sweep: the API enables the rule *after* the update is committed,
and ``schedule_settle`` checks for pending work again *after* disabling. Whichever order the two
happen in, either the settle saw the update (and left the rule enabled) or the wake came after the
disable, or the second check sees the update and enables the rule again.

Errors: the database is the source of truth, the rule only a trigger. An AWS failure raises
``ScheduleUnavailableError`` (HTTP 503 with a JSON ``detail``); the API's services call sync and remove
inside their transaction, so the model write is rolled back and the caller may simply retry. A rule
left enabled by a half-done call is harmless: the aggregator skips models that do not allow aggregation
and settles the rule after every run.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from fma_core.aws import aws_client, aws_errors
from fma_core.exceptions import ServiceUnavailableError
from fma_core.registry import Registry
from fma_django_connectors import selectors
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.models import FederatedModel

__all__ = [
    "ScheduleUnavailableError",
    "rule_name",
    "schedule_remove",
    "schedule_settle",
    "schedule_sync",
    "schedule_wake",
    "schedulers",
]

logger = logging.getLogger(__name__)

# Id of the single target each rule has; fixed so that a resync replaces it instead of adding one.
TARGET_ID = "fma-aggregator"


class ScheduleUnavailableError(ServiceUnavailableError):
    """The schedule could not be changed in AWS (503); in the API's services nothing was saved."""


class Scheduler(Protocol):
    """A way of scheduling aggregations, registered in ``schedulers`` under the name ``FMA_SCHEDULER`` uses."""

    def sync(self, *, model_id: int, enabled: bool) -> None:
        """Create or replace the model's schedule, in the given state."""

    def set_state(self, *, model_id: int, enabled: bool, best_effort: bool = False) -> None:
        """Enable or disable the model's schedule (creating it if it is missing)."""

    def remove(self, *, model_id: int) -> None:
        """Delete the model's schedule; a missing one is fine."""


schedulers: Registry[Scheduler] = Registry("scheduler")


def rule_name(model_id: int) -> str:
    """Name of the EventBridge rule of model ``model_id``."""
    return f"fma-scheduled-{model_id}"


def schedule_sync(*, model: FederatedModel) -> None:
    """Create or replace ``model``'s schedule, enabled while it allows aggregation and has pending work."""
    enabled = model.allow_aggregation and selectors.model_has_pending_work(model_id=model.pk)
    _scheduler().sync(model_id=model.pk, enabled=enabled)


def schedule_wake(*, model: FederatedModel) -> None:
    """Enable ``model``'s schedule after an update of it was committed; failures are logged, never raised.

    The update is stored already and its client waits for the answer: one short attempt (a best-effort
    client). Should it fail, the direct trigger still runs, and the next aggregation or change of the
    model settles the rule.
    """
    if not model.allow_aggregation:
        return
    try:
        _scheduler().set_state(model_id=model.pk, enabled=True, best_effort=True)
    except Exception as exc:
        logger.error("model %s: %s", model.pk, exc)


def schedule_settle(*, model_id: int) -> None:
    """After an aggregation of ``model_id``: disable its schedule if nothing is left to do, else keep it on.

    Raises ``ScheduleUnavailableError`` when AWS fails, so that the aggregator's failure is seen.
    """
    scheduler = _scheduler()
    enabled = _wants_schedule(model_id)
    if enabled is None:
        return  # deleted meanwhile; its schedule went with it
    scheduler.set_state(model_id=model_id, enabled=enabled)
    # An update committed meanwhile may have been woken before this disable: look again, after it.
    if not enabled and _wants_schedule(model_id):
        scheduler.set_state(model_id=model_id, enabled=True)


def schedule_remove(*, model_id: int) -> None:
    """Remove the schedule of a deleted model (no schedule is fine)."""
    _scheduler().remove(model_id=model_id)


def _wants_schedule(model_id: int) -> bool | None:
    """Whether the model's rule should be enabled; None when the model does not exist."""
    allows = FederatedModel.objects.filter(pk=model_id).values_list("allow_aggregation", flat=True).first()
    if allows is None:
        return None
    return allows and selectors.model_has_pending_work(model_id=model_id)


def _scheduler() -> Scheduler:
    return schedulers.get(fma_settings.FMA_SCHEDULER, setting="FMA_SCHEDULER")


class _NoScheduler:
    def sync(self, *, model_id: int, enabled: bool) -> None:
        pass

    def set_state(self, *, model_id: int, enabled: bool, best_effort: bool = False) -> None:
        pass

    def remove(self, *, model_id: int) -> None:
        pass


def _events_errors(action: str) -> Any:
    return aws_errors(
        action,
        service="Amazon EventBridge",
        setting="FMA_SCHEDULE_EXPRESSION, AGGREGATOR_LAMBDA_ARN",
        error=ScheduleUnavailableError,
    )


class _EventBridgeScheduler:
    def sync(self, *, model_id: int, enabled: bool) -> None:
        name = rule_name(model_id)
        with _events_errors(f"Could not update the aggregation schedule {name}"):
            client = aws_client("events")
            client.put_rule(
                Name=name,
                ScheduleExpression=fma_settings.FMA_SCHEDULE_EXPRESSION,
                State="ENABLED" if enabled else "DISABLED",
                Description=f"FMA: aggregate federated model {model_id}",
            )
            client.put_targets(
                Rule=name,
                Targets=[
                    {
                        "Id": TARGET_ID,
                        "Arn": fma_settings.AGGREGATOR_LAMBDA_ARN,
                        "Input": json.dumps({"detail": {"model_id": model_id}}),
                    }
                ],
            )

    def set_state(self, *, model_id: int, enabled: bool, best_effort: bool = False) -> None:
        name = rule_name(model_id)
        client = aws_client("events", best_effort=best_effort)
        with _events_errors(f"Could not {'enable' if enabled else 'disable'} the aggregation schedule {name}"):
            try:
                (client.enable_rule if enabled else client.disable_rule)(Name=name)
                return
            except client.exceptions.ResourceNotFoundException:
                pass
        # A model older than its rule (made while FMA_SCHEDULER was "none", or a rule deleted by hand).
        self.sync(model_id=model_id, enabled=enabled)

    def remove(self, *, model_id: int) -> None:
        name = rule_name(model_id)
        with _events_errors(f"Could not remove the aggregation schedule {name}"):
            client = aws_client("events")
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
