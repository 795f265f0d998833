"""Per-model EventBridge rules, checked in moto's EventBridge (describe_rule / list_targets_by_rule).

A rule is enabled exactly while its model allows aggregation and has pending work: an idle model's
rule invokes nothing.
"""

import json
import logging

import boto3
import pytest
from django.contrib.auth import get_user_model
from moto import mock_aws
from rest_framework import status
from rest_framework.test import APIClient

from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation import schedules
from fma_django_connectors.aggregation.schedules import (
    ScheduleUnavailableError,
    rule_name,
    schedule_remove,
    schedule_settle,
    schedule_sync,
    schedule_wake,
)
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.models import Client, FederatedModel, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_update

AGGREGATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fma-aggregator"

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(monkeypatch, settings):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    settings.FMA_SCHEDULER = "eventbridge"
    settings.AGGREGATOR_LAMBDA_ARN = AGGREGATOR_ARN
    settings.FMA_SCHEDULE_EXPRESSION = "rate(1 minute)"
    with mock_aws():
        yield boto3.client("events", region_name="us-east-1")


@pytest.fixture
def model():
    developer = get_user_model().objects.create_user("dev", password="pw")
    return FederatedModel.objects.create(name="m", developer=developer, aggregator="avg_values_if_data")


def pending_update(model, *, status=ModelUpdate.Status.PENDING):
    """An update of a client registered to ``model``, in ``status``."""
    client = Client.objects.create()
    model.clients.add(client)
    return make_update(model, [1.0], client=client, status=status)


def rule_of(events, model_id):
    rule = events.describe_rule(Name=rule_name(model_id))
    targets = events.list_targets_by_rule(Rule=rule_name(model_id))["Targets"]
    return {"state": rule["State"], "schedule": rule["ScheduleExpression"], "targets": targets}


class TestEventBridge:
    def test_create_makes_a_rule_aimed_at_the_aggregator_idle_until_work_arrives(self, events, model):
        model.allow_aggregation = True

        schedule_sync(model=model)

        assert rule_of(events, model.pk) == {
            "state": "DISABLED",
            "schedule": "rate(1 minute)",
            "targets": [
                {
                    "Id": "fma-aggregator",
                    "Arn": AGGREGATOR_ARN,
                    "Input": json.dumps({"detail": {"model_id": model.pk}}),
                }
            ],
        }
        assert rule_name(model.pk) == f"fma-scheduled-{model.pk}"

    def test_a_model_that_does_not_allow_aggregation_gets_a_disabled_rule(self, events, model):
        schedule_sync(model=model)

        assert rule_of(events, model.pk)["state"] == "DISABLED"

    def test_pause_then_resume(self, events, model):
        pending_update(model)
        model.allow_aggregation = True
        schedule_sync(model=model)

        model.allow_aggregation = False
        schedule_sync(model=model)
        paused = rule_of(events, model.pk)
        model.allow_aggregation = True
        schedule_sync(model=model)
        resumed = rule_of(events, model.pk)

        assert (paused["state"], resumed["state"]) == ("DISABLED", "ENABLED")
        assert len(resumed["targets"]) == 1

    def test_schedule_expression_from_the_settings(self, events, model, settings):
        settings.FMA_SCHEDULE_EXPRESSION = "rate(5 minutes)"

        schedule_sync(model=model)

        assert rule_of(events, model.pk)["schedule"] == "rate(5 minutes)"

    def test_delete_removes_targets_and_rule(self, events, model):
        schedule_sync(model=model)
        events.put_targets(Rule=rule_name(model.pk), Targets=[{"Id": "added-by-hand", "Arn": AGGREGATOR_ARN}])

        schedule_remove(model_id=model.pk)

        assert rule_name(model.pk) not in [rule["Name"] for rule in events.list_rules()["Rules"]]

    def test_removing_a_missing_rule_is_fine(self, events):
        schedule_remove(model_id=424242)

        assert events.list_rules()["Rules"] == []

    def test_other_rules_are_left_alone(self, events, model):
        events.put_rule(Name="someone-elses-rule", ScheduleExpression="rate(1 hour)")
        schedule_sync(model=model)

        schedule_remove(model_id=model.pk)

        assert [rule["Name"] for rule in events.list_rules()["Rules"]] == ["someone-elses-rule"]

    def test_an_aws_refusal_is_a_503_naming_the_rule(self, events, model, settings):
        settings.FMA_SCHEDULE_EXPRESSION = "every minute"

        with pytest.raises(ScheduleUnavailableError) as raised:
            schedule_sync(model=model)

        assert str(raised.value) == (
            f"Could not update the aggregation schedule fma-scheduled-{model.pk}: Amazon EventBridge refused the "
            "call: ValidationException Parameter ScheduleExpression is not valid. "
            "(check FMA_SCHEDULE_EXPRESSION, AGGREGATOR_LAMBDA_ARN and the IAM role)"
        )

    def test_an_unreachable_eventbridge_is_a_503(self, events, model, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

        with pytest.raises(
            ScheduleUnavailableError, match=r"^Could not remove the aggregation schedule fma-sch"
        ) as raised:
            schedule_remove(model_id=model.pk)
        assert "Amazon EventBridge is unreachable" in str(raised.value)


class TestIdleCostsNothing:
    """Enabled when an update arrives, disabled when an aggregation leaves nothing pending."""

    @pytest.fixture
    def idle(self, events, model):
        model.allow_aggregation = True
        model.save()
        schedule_sync(model=model)
        assert rule_of(events, model.pk)["state"] == "DISABLED"
        return model

    def test_an_update_wakes_the_schedule(self, events, idle):
        pending_update(idle)

        schedule_wake(model=idle)

        assert rule_of(events, idle.pk)["state"] == "ENABLED"

    def test_an_aggregation_that_leaves_nothing_pending_disables_it(self, events, idle):
        update = pending_update(idle)
        schedule_wake(model=idle)
        ModelUpdate.objects.filter(pk=update.pk).update(status=ModelUpdate.Status.COMPLETE)

        schedule_settle(model_id=idle.pk)

        assert rule_of(events, idle.pk)["state"] == "DISABLED"

    @pytest.mark.parametrize(
        "status", [ModelUpdate.Status.PENDING, ModelUpdate.Status.FAILED, ModelUpdate.Status.RUNNING]
    )
    def test_work_left_keeps_it_enabled(self, events, idle, status):
        # Failed updates are retried, and a claim held by a run that dies is taken back by a later one.
        pending_update(idle, status=status)
        schedule_wake(model=idle)

        schedule_settle(model_id=idle.pk)

        assert rule_of(events, idle.pk)["state"] == "ENABLED"

    def test_updates_of_clients_no_longer_registered_do_not_keep_it_running(self, events, idle):
        update = pending_update(idle)
        schedule_wake(model=idle)
        idle.clients.remove(update.client)

        schedule_settle(model_id=idle.pk)

        assert rule_of(events, idle.pk)["state"] == "DISABLED"

    def test_an_update_arriving_while_it_is_disabled_is_not_left_without_a_sweep(self, events, idle, monkeypatch):
        scheduler = schedules.schedulers.get("eventbridge", setting="FMA_SCHEDULER")
        set_state = scheduler.set_state

        def update_arrives_during_the_disable(*, model_id, enabled, best_effort=False):
            if not enabled:
                # Committed, and its wake landed, before the disable reached EventBridge.
                pending_update(idle)
                set_state(model_id=model_id, enabled=True, best_effort=True)
            set_state(model_id=model_id, enabled=enabled, best_effort=best_effort)

        monkeypatch.setattr(scheduler, "set_state", update_arrives_during_the_disable)

        schedule_settle(model_id=idle.pk)

        assert rule_of(events, idle.pk)["state"] == "ENABLED"

    def test_a_paused_model_is_not_woken(self, events, model):
        schedule_sync(model=model)
        pending_update(model)

        schedule_wake(model=model)

        assert rule_of(events, model.pk)["state"] == "DISABLED"

    def test_a_paused_model_is_settled_disabled(self, events, model):
        pending_update(model)
        events.put_rule(Name=rule_name(model.pk), ScheduleExpression="rate(1 minute)", State="ENABLED")

        schedule_settle(model_id=model.pk)

        assert rule_of(events, model.pk)["state"] == "DISABLED"

    def test_a_missing_rule_is_created_when_woken(self, events, model):
        model.allow_aggregation = True
        pending_update(model)

        schedule_wake(model=model)

        assert rule_of(events, model.pk)["state"] == "ENABLED"
        assert len(rule_of(events, model.pk)["targets"]) == 1

    def test_settling_a_deleted_model_touches_nothing(self, events):
        schedule_settle(model_id=424242)

        assert events.list_rules()["Rules"] == []

    def test_a_wake_that_cannot_reach_eventbridge_is_logged_not_raised(
        self, idle, monkeypatch, silent_endpoint, caplog
    ):
        monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)

        with caplog.at_level(logging.ERROR, logger="fma_django_connectors.aggregation.schedules"):
            schedule_wake(model=idle)

        assert (
            f"Could not enable the aggregation schedule fma-scheduled-{idle.pk}: Amazon EventBridge is unreachable"
            in (caplog.text)
        )

    def test_a_settle_that_cannot_reach_eventbridge_raises(self, idle, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

        with pytest.raises(ScheduleUnavailableError, match="Could not disable the aggregation schedule"):
            schedule_settle(model_id=idle.pk)


class TestNoScheduler:
    def test_local_settings_touch_no_aws(self, model, monkeypatch):
        assert fma_settings.FMA_SCHEDULER == "none"
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

        # Would raise ScheduleUnavailableError if it tried to reach EventBridge.
        schedule_sync(model=model)
        schedule_remove(model_id=model.pk)


def test_unknown_scheduler_lists_the_choices(model, settings):
    settings.FMA_SCHEDULER = "cron"

    with pytest.raises(
        ConfigurationError, match=r"Unknown scheduler 'cron' \(setting FMA_SCHEDULER\); registered: eventbridge, none"
    ):
        schedule_sync(model=model)


class TestThroughTheApi:
    """What a developer sees when EventBridge fails: a 503 JSON answer, and nothing saved."""

    @pytest.fixture
    def developer_client(self, model):
        client = APIClient()
        client.force_authenticate(model.developer)
        return client

    def test_create_is_rolled_back(self, events, developer_client, settings):
        settings.FMA_SCHEDULE_EXPRESSION = "every minute"

        response = developer_client.post(
            "/api/v1/models/", {"name": "new", "aggregator": "avg_values_if_data"}, format="json"
        )

        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        assert response.json()["detail"].startswith("Could not update the aggregation schedule fma-scheduled-")
        assert list(FederatedModel.objects.values_list("name", flat=True)) == ["m"]

    def test_pause_is_rolled_back(self, events, developer_client, model, settings):
        pending_update(model)
        model.allow_aggregation = True
        model.save()
        schedule_sync(model=model)
        settings.FMA_SCHEDULE_EXPRESSION = "every minute"

        response = developer_client.patch(f"/api/v1/models/{model.pk}/", {"allow_aggregation": False}, format="json")

        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        model.refresh_from_db()
        assert model.allow_aggregation is True
        assert rule_of(events, model.pk)["state"] == "ENABLED"

    def test_create_update_pause_delete_keep_the_rule_in_step(
        self, events, developer_client, django_capture_on_commit_callbacks
    ):
        created = developer_client.post(
            "/api/v1/models/",
            {"name": "new", "aggregator": "avg_values_if_data", "allow_aggregation": True},
            format="json",
        ).json()
        assert rule_of(events, created["id"])["state"] == "DISABLED"
        client = developer_client.post(f"/api/v1/models/{created['id']}/register_client/").json()

        with django_capture_on_commit_callbacks(execute=True):
            response = APIClient().post(
                "/api/v1/model_updates/",
                {"federated_model": created["id"], "data": [1.0]},
                format="json",
                headers={"CLIENT-UUID": client["uuid"]},
            )
        assert response.status_code == status.HTTP_201_CREATED
        assert rule_of(events, created["id"])["state"] == "ENABLED"

        developer_client.patch(f"/api/v1/models/{created['id']}/", {"allow_aggregation": False}, format="json")
        assert rule_of(events, created["id"])["state"] == "DISABLED"

        assert developer_client.delete(f"/api/v1/models/{created['id']}/").status_code == status.HTTP_204_NO_CONTENT
        assert events.list_rules()["Rules"] == []
