"""The aggregator Lambda entry: one class per event kind."""

from __future__ import annotations

import importlib
import json
import time

import boto3
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

import aggregator_initialization
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation.schedules import schedule_sync
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.api_service.test_operations import PASSWORD, admin_secret  # noqa: F401 (the admin secret fixture)
from tests.custom_resources import custom_resource_event, response_url_server
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses
from tests.schedules_support import AGGREGATOR_ARN, schedule_names, schedule_of

Status = ModelUpdate.Status


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.django_db
class TestScheduledEvents:
    def test_aggregates_and_returns_the_new_aggregate_id(self):
        model = make_model()
        make_update(model, [1.0, 3.0])
        make_update(model, [3.0, 5.0])

        aggregate_id = aggregator_initialization.handler({"detail": {"model_id": model.pk}}, None)

        assert result_of(ModelAggregate.objects.get(pk=aggregate_id, federated_model=model)) == [2.0, 4.0]

    def test_the_whole_eventbridge_envelope_is_accepted(self):
        model = make_model()
        make_update(model, [1.0])
        event = {
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {"model_id": model.pk},
        }

        assert aggregator_initialization.handler(event, None) is not None

    def test_nothing_to_aggregate_returns_none(self):
        model = make_model(requirement="require_x_updates", requirement_args={"num_updates": 2})
        update = make_update(model, [1.0])

        assert aggregator_initialization.handler({"detail": {"model_id": model.pk}}, None) is None
        assert statuses(update) == [Status.PENDING]

    def test_a_deleted_model_returns_none(self, caplog):
        assert aggregator_initialization.handler({"detail": {"model_id": 424242}}, None) is None
        assert "model 424242 no longer exists" in caplog.text


@pytest.mark.django_db
class TestScheduleSettled:
    """After each run the model's schedule (moto's EventBridge Scheduler) is left enabled only while work is pending."""

    @pytest.fixture
    def rules(self, scheduler):
        return lambda model: schedule_of(scheduler, model.pk)["state"]

    def test_a_run_that_takes_everything_disables_the_schedule(self, rules):
        model = make_model()
        make_update(model, [1.0])
        schedule_sync(model=model)

        aggregator_initialization.handler({"model_id": model.pk}, None)

        assert rules(model) == "DISABLED"

    def test_a_run_that_leaves_work_keeps_it(self, rules):
        model = make_model(requirement="require_x_updates", requirement_args={"num_updates": 2})
        make_update(model, [1.0])
        schedule_sync(model=model)

        aggregator_initialization.handler({"model_id": model.pk}, None)

        assert rules(model) == "ENABLED"


@pytest.mark.django_db
class TestDirectEvents:
    def test_aggregates_and_returns_the_new_aggregate_id(self):
        model = make_model()
        update = make_update(model, [2.0])

        aggregate_id = aggregator_initialization.handler({"model_id": model.pk}, None)

        assert ModelUpdate.objects.get(pk=update.pk).applied_aggregate_id == aggregate_id

    def test_a_paused_model_returns_none(self):
        model = make_model(allow_aggregation=False)
        make_update(model, [2.0])

        assert aggregator_initialization.handler({"model_id": model.pk}, None) is None


@pytest.mark.django_db
class TestSchedulesMigrationEvents:
    """``{"detail": "migrate_schedules"}``, sent by each deploy after the database migration."""

    def test_this_deployments_rules_give_way_to_schedules(self, scheduler):
        events = boto3.client("events", region_name="us-east-1")
        model = make_model()
        make_update(model, [1.0])
        events.put_rule(Name=f"fma-scheduled-{model.pk}", ScheduleExpression="rate(1 minute)")
        events.put_targets(
            Rule=f"fma-scheduled-{model.pk}",
            Targets=[{"Id": "fma-aggregator", "Arn": AGGREGATOR_ARN, "Input": json.dumps({"detail": {"model_id": 1}})}],
        )

        answer = aggregator_initialization.handler({"detail": "migrate_schedules"}, None)

        assert answer["statusCode"] == 200
        assert json.loads(answer["body"]) == {
            "data": "deleted 1 EventBridge rule(s) of earlier versions; scheduled 1 model(s) with pending work"
        }
        assert events.list_rules()["Rules"] == []
        assert schedule_names(scheduler) == [f"model-{model.pk}"]


class TestUnknownEvents:
    @pytest.mark.parametrize(
        "event",
        [
            {},
            {"detail": {"update_metadata_db": True}},
            {"detail": "model_id"},
            {"requestContext": {}, "path": "/"},
            # Not CloudFormation's: no URL to answer at, or a request type it never sends.
            {"RequestType": "Create"},
            {"RequestType": "Rename", "ResponseURL": "http://127.0.0.1:9/"},
        ],
    )
    def test_is_rejected_quoting_the_event(self, event):
        with pytest.raises(ValueError, match="Unsupported event for the aggregator: ") as error:
            aggregator_initialization.handler(event, None)
        assert repr(event) in str(error.value)

    @pytest.mark.parametrize("model_id", ["7", 7.5, True, None])
    def test_a_model_id_that_is_not_an_integer_is_rejected(self, model_id):
        with pytest.raises(ValueError, match=rf"model_id must be an integer, got {model_id!r}"):
            aggregator_initialization.handler({"detail": {"model_id": model_id}}, None)


class TestColdStart:
    def test_a_connector_name_that_is_not_registered_stops_the_start(self, settings):
        settings.AGGREGATOR_SETTINGS = {**settings.AGGREGATOR_SETTINGS, "model_data_connector": {"type": "S3Thing"}}
        try:
            with pytest.raises(
                ConfigurationError,
                match=r"Unknown model data connector 'S3Thing' "
                r"\(setting AGGREGATOR_SETTINGS\[\"model_data_connector\"\]\[\"type\"\]\); "
                r"registered: DjangoModelDataConnector",
            ):
                importlib.reload(aggregator_initialization)
        finally:
            settings.AGGREGATOR_SETTINGS = {
                **settings.AGGREGATOR_SETTINGS,
                "model_data_connector": {"type": "DjangoModelDataConnector"},
            }
            importlib.reload(aggregator_initialization)


@pytest.fixture
def response_url():
    """A real HTTP server on 127.0.0.1 standing for the ResponseURL; ``.received`` holds the PUTs it got."""
    with response_url_server() as server:
        yield server


class LambdaContext:
    """The two attributes of Lambda's context object the custom resource answer reads."""

    log_stream_name = "2026/12/06/[$LATEST]0123456789abcdef"

    def __init__(self, seconds_left=900.0):
        self._deadline = time.monotonic() + seconds_left

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)


def answered(response_url):
    (received,) = response_url.received
    return received["body"]


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_secret")
class TestCustomResourceEvents:
    def test_create_migrates_creates_the_admin_and_answers_success(self, response_url):
        event = custom_resource_event(response_url.url, "Create")

        assert aggregator_initialization.handler(event, LambdaContext()) is None

        (received,) = response_url.received
        assert received["path"] == "/stack-bucket/response?X-Amz-Signature=abc"
        # The URL is signed without a content type: the PUT must not send one.
        assert received["headers"].get("Content-Type", "") == ""
        assert received["body"] == {
            "Status": "SUCCESS",
            "Reason": "(log stream 2026/12/06/[$LATEST]0123456789abcdef)",
            "PhysicalResourceId": "DeployOperations",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": "DeployOperations",
            "Data": {
                "Migration": "database updated successfully",
                "Admin": "admin user 'root' created",
                "OrphanResults": "deleted 0 result file(s) no aggregate records",
                "Schedules": "deleted 0 EventBridge rule(s) of earlier versions; "
                "scheduled 0 model(s) with pending work",
            },
        }
        assert get_user_model().objects.get(username="root").check_password(PASSWORD)

    def test_update_keeps_the_physical_id_and_leaves_the_admin_alone(self, response_url):
        get_user_model().objects.create_superuser("root", password="changed since the first deploy")
        event = custom_resource_event(response_url.url, "Update", PhysicalResourceId="DeployOperations-first")

        aggregator_initialization.handler(event, LambdaContext())

        body = answered(response_url)
        assert body["Status"] == "SUCCESS"
        assert body["PhysicalResourceId"] == "DeployOperations-first"
        assert body["Data"]["Admin"] == "an admin user exists; nothing changed"
        assert get_user_model().objects.get(username="root").check_password("changed since the first deploy")

    def test_delete_changes_nothing_and_answers_success(self, response_url):
        event = custom_resource_event(response_url.url, "Delete", PhysicalResourceId="DeployOperations")

        aggregator_initialization.handler(event, LambdaContext())

        body = answered(response_url)
        assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "DeployOperations", {})
        assert not get_user_model().objects.exists()

    def test_a_failing_operation_answers_failed_with_its_reason(self, response_url, settings):
        settings.FMA_ADMIN_SECRET_ID = ""

        aggregator_initialization.handler(custom_resource_event(response_url.url, "Create"), LambdaContext())

        body = answered(response_url)
        assert body["Status"] == "FAILED"
        assert body["Reason"].startswith("ConfigurationError: bootstrap_admin needs the environment variable")
        assert body["Reason"].endswith("(log stream 2026/12/06/[$LATEST]0123456789abcdef)")
        assert not get_user_model().objects.exists()

    def test_an_invocation_about_to_time_out_answers_failed_once(self, response_url):
        # Less time left than the margin kept for the answer: the deadline answers before the run ends.
        aggregator_initialization.handler(custom_resource_event(response_url.url, "Create"), LambdaContext(2.0))

        body = answered(response_url)
        assert body["Status"] == "FAILED"
        assert body["Reason"].startswith("the deploy operations did not finish within the function's timeout")

    def test_a_refused_answer_is_sent_again(self, response_url):
        response_url.statuses = [503]

        aggregator_initialization.handler(custom_resource_event(response_url.url, "Create"), LambdaContext())

        assert [received["body"]["Status"] for received in response_url.received] == ["SUCCESS", "SUCCESS"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("admin_secret")
def test_a_failing_migration_answers_failed_with_its_reason(response_url):
    # Schema drift: the database holds a table its migration record says is still to be created.
    MigrationRecorder(connection).record_unapplied("sessions", "0001_initial")
    try:
        aggregator_initialization.handler(custom_resource_event(response_url.url, "Update"), LambdaContext())
    finally:
        MigrationRecorder(connection).record_applied("sessions", "0001_initial")

    body = answered(response_url)
    assert body["Status"] == "FAILED"
    assert "django_session" in body["Reason"]
    assert "already exists" in body["Reason"]
    # The operations after the migration did not run.
    assert not get_user_model().objects.exists()
