"""Per-model schedules in the deployment's EventBridge Scheduler group, checked in moto (get_schedule).

A schedule is enabled exactly while its model allows aggregation and has pending work: an idle model's
schedule invokes nothing. Each deployment keeps its schedules in a group of its own, so two deployments
in one account never touch each other's.
"""

import json
import logging

import boto3
import pytest
from django.contrib.auth import get_user_model
from rest_framework import status
from rest_framework.test import APIClient

from fma_core.aws import aws_client
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation import schedules
from fma_django_connectors.aggregation.schedules import (
    ScheduleUnavailableError,
    schedule_remove,
    schedule_settle,
    schedule_sync,
    schedule_wake,
    schedules_migrate,
)
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.models import Client, FederatedModel, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_update
from tests.schedules_support import AGGREGATOR_ARN, GROUP, ROLE_ARN, schedule_names, schedule_of

# A second deployment in the same account: its own group, role and aggregator.
STAGING = {
    "FMA_SCHEDULE_GROUP": "fma-staging",
    "FMA_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/fma-staging-scheduler",
    "AGGREGATOR_LAMBDA_ARN": "arn:aws:lambda:us-east-1:123456789012:function:fma-staging-aggregator",
}

pytestmark = pytest.mark.django_db


@pytest.fixture
def model():
    developer = get_user_model().objects.create_user("dev", password="pw")
    return FederatedModel.objects.create(name="m", developer=developer, aggregator="avg_values_if_data")


def pending_update(model, *, status=ModelUpdate.Status.PENDING):
    """An update of a client registered to ``model``, in ``status``."""
    client = Client.objects.create()
    model.clients.add(client)
    return make_update(model, [1.0], client=client, status=status)


def cut_off(monkeypatch, variable, endpoint="http://127.0.0.1:9"):
    """Point ``variable`` (an AWS endpoint variable) at ``endpoint``; clients built before this test step go."""
    monkeypatch.setenv(variable, endpoint)
    aws_client.cache_clear()


class TestEventBridgeScheduler:
    def test_create_makes_a_schedule_aimed_at_the_aggregator_idle_until_work_arrives(self, scheduler, model):
        model.allow_aggregation = True

        schedule_sync(model=model)

        assert schedule_of(scheduler, model.pk) == {
            "state": "DISABLED",
            "schedule": "rate(1 minute)",
            "target": {
                "Arn": AGGREGATOR_ARN,
                "RoleArn": ROLE_ARN,
                "Input": json.dumps({"detail": {"model_id": model.pk}}),
                "RetryPolicy": {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 2},
            },
        }
        assert schedule_names(scheduler) == [f"model-{model.pk}"]

    def test_a_model_that_does_not_allow_aggregation_gets_a_disabled_schedule(self, scheduler, model):
        schedule_sync(model=model)

        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"

    def test_pause_then_resume(self, scheduler, model):
        pending_update(model)
        model.allow_aggregation = True
        schedule_sync(model=model)

        model.allow_aggregation = False
        schedule_sync(model=model)
        paused = schedule_of(scheduler, model.pk)
        model.allow_aggregation = True
        schedule_sync(model=model)
        resumed = schedule_of(scheduler, model.pk)

        assert (paused["state"], resumed["state"]) == ("DISABLED", "ENABLED")

    def test_schedule_expression_from_the_settings(self, scheduler, model, settings):
        settings.FMA_SCHEDULE_EXPRESSION = "rate(5 minutes)"

        schedule_sync(model=model)

        assert schedule_of(scheduler, model.pk)["schedule"] == "rate(5 minutes)"

    def test_delete_removes_the_schedule(self, scheduler, model):
        schedule_sync(model=model)

        schedule_remove(model_id=model.pk)

        assert schedule_names(scheduler) == []

    def test_removing_a_missing_schedule_is_fine(self, scheduler):
        schedule_remove(model_id=424242)

        assert schedule_names(scheduler) == []

    def test_an_unreachable_scheduler_is_a_503_naming_the_schedule(self, scheduler, model, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

        with pytest.raises(ScheduleUnavailableError) as raised:
            schedule_remove(model_id=model.pk)

        message = str(raised.value)
        assert message.startswith(
            f"Could not remove the aggregation schedule fma/model-{model.pk}: Amazon EventBridge Scheduler is "
            "unreachable"
        )
        assert message.endswith(
            "and FMA_SCHEDULE_GROUP, FMA_SCHEDULE_ROLE_ARN, FMA_SCHEDULE_EXPRESSION, AGGREGATOR_LAMBDA_ARN"
        )


class TestDeployments:
    """Production and staging in one account and region, each with its model 1 (or N): no collision."""

    @pytest.fixture
    def staging(self, scheduler, settings):
        scheduler.create_schedule_group(Name=STAGING["FMA_SCHEDULE_GROUP"])

        def deployment(values):
            for name, value in values.items():
                setattr(settings, name, value)

        return deployment

    def test_the_same_model_id_in_two_deployments_gets_two_schedules(self, scheduler, staging, model):
        production = {
            "FMA_SCHEDULE_GROUP": GROUP,
            "FMA_SCHEDULE_ROLE_ARN": ROLE_ARN,
            "AGGREGATOR_LAMBDA_ARN": AGGREGATOR_ARN,
        }
        schedule_sync(model=model)
        staging(STAGING)
        pending_update(model)
        model.allow_aggregation = True

        schedule_sync(model=model)

        ours = schedule_of(scheduler, model.pk)
        theirs = schedule_of(scheduler, model.pk, group=STAGING["FMA_SCHEDULE_GROUP"])
        assert (ours["state"], ours["target"]["Arn"], ours["target"]["RoleArn"]) == (
            "DISABLED",
            production["AGGREGATOR_LAMBDA_ARN"],
            production["FMA_SCHEDULE_ROLE_ARN"],
        )
        assert (theirs["state"], theirs["target"]["Arn"], theirs["target"]["RoleArn"]) == (
            "ENABLED",
            STAGING["AGGREGATOR_LAMBDA_ARN"],
            STAGING["FMA_SCHEDULE_ROLE_ARN"],
        )

    def test_deleting_one_deployments_schedule_leaves_the_others(self, scheduler, staging, model):
        schedule_sync(model=model)
        staging(STAGING)
        schedule_sync(model=model)

        schedule_remove(model_id=model.pk)

        assert schedule_names(scheduler, group=STAGING["FMA_SCHEDULE_GROUP"]) == []
        assert schedule_names(scheduler) == [f"model-{model.pk}"]

    def test_a_deployment_with_more_models_than_eventbridge_has_rules_per_bus(self, scheduler, settings):
        """EventBridge allows 300 rules per bus; one group takes every model's schedule."""
        developer = get_user_model().objects.create_user("many", password="pw")
        models = FederatedModel.objects.bulk_create(
            FederatedModel(name=f"m{index}", developer=developer, aggregator="avg_values_if_data")
            for index in range(301)
        )

        for created in models:
            schedule_sync(model=created)

        assert len(schedule_names(scheduler)) == 301


class TestIdleCostsNothing:
    """Enabled when an update arrives, disabled when an aggregation leaves nothing pending."""

    @pytest.fixture
    def idle(self, scheduler, model):
        model.allow_aggregation = True
        model.save()
        schedule_sync(model=model)
        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"
        return model

    def test_an_update_wakes_the_schedule(self, scheduler, idle):
        pending_update(idle)

        schedule_wake(model=idle)

        assert schedule_of(scheduler, idle.pk)["state"] == "ENABLED"

    def test_an_aggregation_that_leaves_nothing_pending_disables_it(self, scheduler, idle):
        update = pending_update(idle)
        schedule_wake(model=idle)
        ModelUpdate.objects.filter(pk=update.pk).update(status=ModelUpdate.Status.COMPLETE)

        schedule_settle(model_id=idle.pk)

        assert schedule_of(scheduler, idle.pk)["state"] == "DISABLED"

    @pytest.mark.parametrize(
        "status", [ModelUpdate.Status.PENDING, ModelUpdate.Status.FAILED, ModelUpdate.Status.RUNNING]
    )
    def test_work_left_keeps_it_enabled(self, scheduler, idle, status):
        # Failed updates are retried, and a claim held by a run that dies is taken back by a later one.
        pending_update(idle, status=status)
        schedule_wake(model=idle)

        schedule_settle(model_id=idle.pk)

        assert schedule_of(scheduler, idle.pk)["state"] == "ENABLED"

    def test_updates_of_clients_no_longer_registered_do_not_keep_it_running(self, scheduler, idle):
        update = pending_update(idle)
        schedule_wake(model=idle)
        idle.clients.remove(update.client)

        schedule_settle(model_id=idle.pk)

        assert schedule_of(scheduler, idle.pk)["state"] == "DISABLED"

    def test_an_update_arriving_while_it_is_disabled_is_not_left_without_a_sweep(self, scheduler, idle, monkeypatch):
        backend = schedules.schedulers.get("eventbridge-scheduler", setting="FMA_SCHEDULER")
        set_state = backend.set_state

        def update_arrives_during_the_disable(*, model_id, enabled, best_effort=False):
            if not enabled:
                # Committed, and its wake landed, before the disable reached EventBridge Scheduler.
                pending_update(idle)
                set_state(model_id=model_id, enabled=True, best_effort=True)
            set_state(model_id=model_id, enabled=enabled, best_effort=best_effort)

        monkeypatch.setattr(backend, "set_state", update_arrives_during_the_disable)

        schedule_settle(model_id=idle.pk)

        assert schedule_of(scheduler, idle.pk)["state"] == "ENABLED"

    def test_a_paused_model_is_not_woken(self, scheduler, model):
        schedule_sync(model=model)
        pending_update(model)

        schedule_wake(model=model)

        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"

    def test_a_paused_model_is_settled_disabled(self, scheduler, model):
        pending_update(model)
        model.allow_aggregation = True
        schedule_sync(model=model)
        assert schedule_of(scheduler, model.pk)["state"] == "ENABLED"
        # Paused in the database (the model row was never saved as allowing aggregation).

        schedule_settle(model_id=model.pk)

        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"

    def test_a_missing_schedule_is_created_when_woken(self, scheduler, model):
        model.allow_aggregation = True
        pending_update(model)

        schedule_wake(model=model)

        assert schedule_of(scheduler, model.pk)["state"] == "ENABLED"
        assert schedule_names(scheduler) == [f"model-{model.pk}"]

    def test_settling_a_deleted_model_touches_nothing(self, scheduler):
        schedule_settle(model_id=424242)

        assert schedule_names(scheduler) == []

    def test_a_wake_that_cannot_reach_the_scheduler_is_logged_not_raised(
        self, idle, monkeypatch, silent_endpoint, caplog
    ):
        cut_off(monkeypatch, "AWS_ENDPOINT_URL", silent_endpoint)

        with caplog.at_level(logging.ERROR, logger="fma_django_connectors.aggregation.schedules"):
            schedule_wake(model=idle)

        assert (
            f"Could not enable the aggregation schedule fma/model-{idle.pk}: Amazon EventBridge Scheduler is "
            "unreachable" in caplog.text
        )

    def test_a_settle_that_cannot_reach_the_scheduler_raises(self, idle, monkeypatch):
        cut_off(monkeypatch, "AWS_ENDPOINT_URL")

        with pytest.raises(ScheduleUnavailableError, match="Could not disable the aggregation schedule"):
            schedule_settle(model_id=idle.pk)


class TestMigrationFromRules:
    """At deploy: the per-model EventBridge rules of earlier versions give way to the deployment's schedules."""

    @pytest.fixture
    def events(self, scheduler):
        return boto3.client("events", region_name="us-east-1")

    @staticmethod
    def legacy_rule(events, model_id, target_arn):
        """A rule as earlier versions put it: ``fma-scheduled-<id>``, one target, the scheduled-event input."""
        name = f"fma-scheduled-{model_id}"
        events.put_rule(Name=name, ScheduleExpression="rate(1 minute)", State="ENABLED")
        events.put_targets(
            Rule=name,
            Targets=[
                {"Id": "fma-aggregator", "Arn": target_arn, "Input": json.dumps({"detail": {"model_id": model_id}})}
            ],
        )
        return name

    def rule_names(self, events):
        return sorted(rule["Name"] for rule in events.list_rules()["Rules"])

    def test_only_this_deployments_rules_are_deleted(self, events, model):
        ours = self.legacy_rule(events, model.pk, AGGREGATOR_ARN)
        theirs = self.legacy_rule(events, model.pk + 1, STAGING["AGGREGATOR_LAMBDA_ARN"])
        events.put_rule(Name="someone-elses-rule", ScheduleExpression="rate(1 hour)")
        events.put_targets(Rule="someone-elses-rule", Targets=[{"Id": "1", "Arn": AGGREGATOR_ARN}])

        migrated = schedules_migrate()

        assert migrated["deleted_rules"] == [ours]
        assert self.rule_names(events) == sorted([theirs, "someone-elses-rule"])

    def test_models_with_pending_work_get_an_enabled_schedule_idle_ones_none(self, scheduler, events, model):
        busy = FederatedModel.objects.create(
            name="busy", developer=model.developer, aggregator="avg_values_if_data", allow_aggregation=True
        )
        pending_update(busy)
        self.legacy_rule(events, model.pk, AGGREGATOR_ARN)
        self.legacy_rule(events, busy.pk, AGGREGATOR_ARN)

        migrated = schedules_migrate()

        assert migrated["scheduled_models"] == [busy.pk]
        assert schedule_names(scheduler) == [f"model-{busy.pk}"]
        assert schedule_of(scheduler, busy.pk)["state"] == "ENABLED"
        assert self.rule_names(events) == []

    def test_rules_aimed_at_the_unqualified_function_go_when_the_setting_names_an_alias(self, events, model, settings):
        name = self.legacy_rule(events, model.pk, AGGREGATOR_ARN)
        settings.AGGREGATOR_LAMBDA_ARN = f"{AGGREGATOR_ARN}:live"

        assert schedules_migrate()["deleted_rules"] == [name]

    def test_a_second_run_changes_nothing(self, scheduler, events, model):
        self.legacy_rule(events, model.pk, AGGREGATOR_ARN)
        schedules_migrate()

        assert schedules_migrate() == {"deleted_rules": [], "scheduled_models": []}
        assert schedule_names(scheduler) == []

    def test_an_unreachable_eventbridge_is_a_503(self, scheduler, monkeypatch):
        cut_off(monkeypatch, "AWS_ENDPOINT_URL_EVENTBRIDGE")

        with pytest.raises(ScheduleUnavailableError, match=r"^Could not delete the EventBridge rules of earlier"):
            schedules_migrate()


class TestNoScheduler:
    def test_local_settings_touch_no_aws(self, model, monkeypatch):
        assert fma_settings.FMA_SCHEDULER == "none"
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

        # Would raise ScheduleUnavailableError if it tried to reach AWS.
        schedule_sync(model=model)
        schedule_remove(model_id=model.pk)
        assert schedules_migrate() == {"deleted_rules": [], "scheduled_models": []}


def test_unknown_scheduler_lists_the_choices(model, settings):
    settings.FMA_SCHEDULER = "cron"

    with pytest.raises(
        ConfigurationError,
        match=r"Unknown scheduler 'cron' \(setting FMA_SCHEDULER\); registered: eventbridge-scheduler, none",
    ):
        schedule_sync(model=model)


class TestThroughTheApi:
    """What a developer sees when EventBridge Scheduler fails: a 503 JSON answer, and nothing saved."""

    @pytest.fixture
    def developer_client(self, model):
        client = APIClient()
        client.force_authenticate(model.developer)
        return client

    @pytest.fixture
    def scheduler_down(self, monkeypatch):
        # boto3's per-service endpoint: only EventBridge Scheduler is cut off.
        return lambda: cut_off(monkeypatch, "AWS_ENDPOINT_URL_SCHEDULER")

    def test_create_is_rolled_back(self, scheduler, scheduler_down, developer_client):
        scheduler_down()

        response = developer_client.post(
            "/api/v1/models/", {"name": "new", "aggregator": "avg_values_if_data"}, format="json"
        )

        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        assert response.json()["detail"].startswith("Could not update the aggregation schedule fma/model-")
        assert list(FederatedModel.objects.values_list("name", flat=True)) == ["m"]

    def test_pause_is_rolled_back(self, scheduler, scheduler_down, developer_client, model):
        pending_update(model)
        model.allow_aggregation = True
        model.save()
        schedule_sync(model=model)
        scheduler_down()

        response = developer_client.patch(f"/api/v1/models/{model.pk}/", {"allow_aggregation": False}, format="json")

        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        model.refresh_from_db()
        assert model.allow_aggregation is True
        assert schedule_of(scheduler, model.pk)["state"] == "ENABLED"

    def test_create_update_pause_delete_keep_the_schedule_in_step(
        self, scheduler, developer_client, django_capture_on_commit_callbacks
    ):
        created = developer_client.post(
            "/api/v1/models/",
            {"name": "new", "aggregator": "avg_values_if_data", "allow_aggregation": True},
            format="json",
        ).json()
        assert schedule_of(scheduler, created["id"])["state"] == "DISABLED"
        client = developer_client.post(f"/api/v1/models/{created['id']}/register_client/").json()

        with django_capture_on_commit_callbacks(execute=True):
            response = APIClient().post(
                "/api/v1/model_updates/",
                {"federated_model": created["id"], "data": [1.0]},
                format="json",
                headers={"CLIENT-UUID": client["uuid"]},
            )
        assert response.status_code == status.HTTP_201_CREATED
        assert schedule_of(scheduler, created["id"])["state"] == "ENABLED"

        developer_client.patch(f"/api/v1/models/{created['id']}/", {"allow_aggregation": False}, format="json")
        assert schedule_of(scheduler, created["id"])["state"] == "DISABLED"

        assert developer_client.delete(f"/api/v1/models/{created['id']}/").status_code == status.HTTP_204_NO_CONTENT
        assert schedule_names(scheduler) == []
