"""Per-model aggregation schedules: an EventBridge Scheduler schedule per model remotely, nothing locally.

``fma_settings.FMA_SCHEDULER`` picks the scheduler: ``"none"`` (the local default, where the in-process
trigger aggregates) or ``"eventbridge-scheduler"``. Each deployment owns a schedule group,
``FMA_SCHEDULE_GROUP``, which its stack creates and deletes (deleting a group deletes its schedules, so
a teardown leaves none behind). In it the schedule ``model-<model id>`` fires ``FMA_SCHEDULE_EXPRESSION``
(default ``rate(1 minute)``) at ``AGGREGATOR_LAMBDA_ARN``, invoked with the role ``FMA_SCHEDULE_ROLE_ARN``,
with the scheduled-event input ``{"detail": {"model_id": <id>}}``. Names are unique per group, so two
deployments in one account never share a schedule; EventBridge Scheduler's default quota is millions of
schedules per account and region, where EventBridge allows 300 rules per bus.

It sweeps up anything an update's direct trigger missed, and so it only needs to run while there is
something to sweep: it is ENABLED exactly while the model allows aggregation *and* has pending work
(``selectors.model_has_pending_work``), so an idle model costs no invocation at all.

- ``schedule_sync``: the model was created or changed (API, admin): the schedule is put in full.
- ``schedule_wake``: an update was stored: the schedule is enabled, best effort (the update is saved already).
- ``schedule_settle``: an aggregation ran: the schedule is disabled if it left nothing pending.
- ``schedule_remove``: the model was deleted.
- ``schedules_migrate``: at deploy, the EventBridge rules ``fma-scheduled-<id>`` that earlier versions
  kept for this deployment's aggregator are deleted, and the models with pending work get their schedule.

Why no update is ever left without a sweep: the API enables the schedule *after* the update is committed,
and ``schedule_settle`` checks for pending work again *after* disabling. Whichever order the two
happen in, either the settle saw the update (and left the schedule enabled) or the wake came after the
disable, or the second check sees the update and enables the schedule again.

Errors: the database is the source of truth, the schedule only a trigger. An AWS failure raises
``ScheduleUnavailableError`` (HTTP 503 with a JSON ``detail``); the API's services call sync and remove
inside their transaction, so the model write is rolled back and the caller may simply retry. A schedule
left enabled by a half-done call is harmless: the aggregator skips models that do not allow aggregation
and settles the schedule after every run.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from typing import Any, Protocol

from fma_core.aws import aws_client, aws_errors
from fma_core.exceptions import ServiceUnavailableError
from fma_core.registry import Registry
from fma_django_connectors import selectors
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.models import FederatedModel

__all__ = [
    "LEGACY_RULE_PREFIX",
    "ScheduleUnavailableError",
    "schedule_name",
    "schedule_remove",
    "schedule_settle",
    "schedule_sync",
    "schedule_wake",
    "schedulers",
    "schedules_migrate",
]

logger = logging.getLogger(__name__)

# Names of the EventBridge rules earlier versions kept, one per model, shared by every deployment of an account.
LEGACY_RULE_PREFIX = "fma-scheduled-"
_SETTINGS = "FMA_SCHEDULE_GROUP, FMA_SCHEDULE_ROLE_ARN, FMA_SCHEDULE_EXPRESSION, AGGREGATOR_LAMBDA_ARN"
# A schedule fires again a minute later: a failed delivery needs no day of retries (Scheduler's default, 185
# attempts over 24 h), which would pile invokes of an idle model onto the aggregator after an outage.
_RETRY_POLICY = {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 2}


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


def schedule_name(model_id: int) -> str:
    """Name of model ``model_id``'s schedule in the deployment's group ``FMA_SCHEDULE_GROUP``."""
    return f"model-{model_id}"


def schedule_sync(*, model: FederatedModel) -> None:
    """Create or replace ``model``'s schedule, enabled while it allows aggregation and has pending work."""
    enabled = model.allow_aggregation and selectors.model_has_pending_work(model_id=model.pk)
    _scheduler().sync(model_id=model.pk, enabled=enabled)


def schedule_wake(*, model: FederatedModel) -> None:
    """Enable ``model``'s schedule after an update of it was committed; failures are logged, never raised.

    The update is stored already and its client waits for the answer: one short attempt (a best-effort
    client). Should it fail, the direct trigger still runs, and the next aggregation or change of the
    model settles the schedule.
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


def schedules_migrate() -> dict[str, list[Any]]:
    """Move this deployment from per-model EventBridge rules to its schedule group; safe to repeat.

    Deletes the rules ``fma-scheduled-*`` whose target is this deployment's aggregator (rules of other
    deployments, and any other rule, are left alone), then puts the schedule of every model that allows
    aggregation and has pending work, enabled. Idle models get theirs when work arrives (``schedule_wake``
    creates a missing schedule). Returns ``{"deleted_rules": [...], "scheduled_models": [...]}``.
    """
    deleted = _legacy_rules_delete() if fma_settings.FMA_SCHEDULER != "none" else []
    scheduler = _scheduler()
    model_ids = selectors.models_with_pending_work()
    for model_id in model_ids:
        scheduler.sync(model_id=model_id, enabled=True)
    return {"deleted_rules": deleted, "scheduled_models": model_ids}


def _wants_schedule(model_id: int) -> bool | None:
    """Whether the model's schedule should be enabled; None when the model does not exist."""
    allows = FederatedModel.objects.filter(pk=model_id).values_list("allow_aggregation", flat=True).first()
    if allows is None:
        return None
    return allows and selectors.model_has_pending_work(model_id=model_id)


def _scheduler() -> Scheduler:
    return schedulers.get(fma_settings.FMA_SCHEDULER, setting="FMA_SCHEDULER")


def _unqualified(function_arn: str) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<name>`` of a function ARN that may carry a version or alias."""
    return ":".join(function_arn.split(":")[:7])


def _legacy_rules_delete() -> list[str]:
    """Delete the ``fma-scheduled-*`` rules aimed at this deployment's aggregator; their names."""
    targets = {fma_settings.AGGREGATOR_LAMBDA_ARN, _unqualified(fma_settings.AGGREGATOR_LAMBDA_ARN)}
    deleted = []
    with aws_errors(
        "Could not delete the EventBridge rules of earlier versions",
        service="Amazon EventBridge",
        setting="AGGREGATOR_LAMBDA_ARN",
        error=ScheduleUnavailableError,
    ):
        events = aws_client("events")
        names = {
            name
            for target in targets
            for page in events.get_paginator("list_rule_names_by_target").paginate(TargetArn=target)
            for name in page["RuleNames"]
            if name.startswith(LEGACY_RULE_PREFIX)
        }
        for name in sorted(names):
            # A rule with targets cannot be deleted: every target goes first, ours and any added by hand.
            ids = [target["Id"] for target in events.list_targets_by_rule(Rule=name)["Targets"]]
            if ids:
                events.remove_targets(Rule=name, Ids=ids)
            events.delete_rule(Name=name)
            deleted.append(name)
    logger.info("schedules_migrate: deleted the EventBridge rules %s", deleted)
    return deleted


class _NoScheduler:
    def sync(self, *, model_id: int, enabled: bool) -> None:
        pass

    def set_state(self, *, model_id: int, enabled: bool, best_effort: bool = False) -> None:
        pass

    def remove(self, *, model_id: int) -> None:
        pass


class _EventBridgeScheduler:
    """One schedule per model in the deployment's group; every change puts the whole definition.

    EventBridge Scheduler has no enable/disable call: UpdateSchedule replaces the schedule, state included.
    """

    def sync(self, *, model_id: int, enabled: bool) -> None:
        self._put(model_id=model_id, enabled=enabled, best_effort=False, verb="update")

    def set_state(self, *, model_id: int, enabled: bool, best_effort: bool = False) -> None:
        self._put(model_id=model_id, enabled=enabled, best_effort=best_effort, verb="enable" if enabled else "disable")

    def remove(self, *, model_id: int) -> None:
        with self._errors("remove", model_id):
            client = aws_client("scheduler")
            with suppress(client.exceptions.ResourceNotFoundException):
                client.delete_schedule(GroupName=fma_settings.FMA_SCHEDULE_GROUP, Name=schedule_name(model_id))

    def _put(self, *, model_id: int, enabled: bool, best_effort: bool, verb: str) -> None:
        definition = {
            "GroupName": fma_settings.FMA_SCHEDULE_GROUP,
            "Name": schedule_name(model_id),
            "Description": f"FMA: aggregate federated model {model_id}",
            "ScheduleExpression": fma_settings.FMA_SCHEDULE_EXPRESSION,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {
                "Arn": fma_settings.AGGREGATOR_LAMBDA_ARN,
                "RoleArn": fma_settings.FMA_SCHEDULE_ROLE_ARN,
                "Input": json.dumps({"detail": {"model_id": model_id}}),
                "RetryPolicy": _RETRY_POLICY,
            },
        }
        with self._errors(verb, model_id):
            client = aws_client("scheduler", best_effort=best_effort)
            try:
                client.update_schedule(**definition)
                return
            except client.exceptions.ResourceNotFoundException:
                pass  # a model older than its schedule (made under FMA_SCHEDULER "none", or migrated while idle)
            try:
                client.create_schedule(**definition)
            except client.exceptions.ConflictException:
                # Created meanwhile by a concurrent call (a wake racing a sync): this call's state is put as planned.
                client.update_schedule(**definition)

    @staticmethod
    def _errors(verb: str, model_id: int) -> Any:
        name = f"{fma_settings.FMA_SCHEDULE_GROUP}/{schedule_name(model_id)}"
        return aws_errors(
            f"Could not {verb} the aggregation schedule {name}",
            service="Amazon EventBridge Scheduler",
            setting=_SETTINGS,
            error=ScheduleUnavailableError,
        )


schedulers.register("none")(_NoScheduler())
schedulers.register("eventbridge-scheduler")(_EventBridgeScheduler())
