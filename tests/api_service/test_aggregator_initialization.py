"""The aggregator Lambda entry: one class per event kind."""

from __future__ import annotations

import importlib

import pytest
from botocore.exceptions import BotoCoreError

import aggregator_initialization
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation.schedules import rule_name, schedule_sync
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.test_schedules import events  # noqa: F401 (the moto EventBridge fixture)
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses
from tests.s3_storage import MotoS3, store_model_data_in_s3

Status = ModelUpdate.Status

# The handler closes connections after each event, as Django after a request; not the test's own.
pytestmark = pytest.mark.usefixtures("keep_test_connection")


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
    """After each run the model's EventBridge rule (moto) is left enabled only while work is pending."""

    @pytest.fixture
    def rules(self, request):
        eventbridge = request.getfixturevalue("events")
        return lambda model: eventbridge.describe_rule(Name=rule_name(model.pk))["State"]

    def test_a_run_that_takes_everything_disables_the_rule(self, rules):
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


class TestUnknownEvents:
    @pytest.mark.parametrize(
        "event",
        [
            {},
            {"detail": {"update_metadata_db": True}},
            {"detail": "model_id"},
            {"requestContext": {}, "path": "/"},
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


@pytest.mark.django_db
class TestInfrastructureFailures:
    """The storage or the database failing is the deployment's fault, not the updates': the invocation fails
    (Lambda retries it, then sends it to the on-failure queue, which raises an alarm) and the updates stay
    pending for the next run. Data at fault is settled as before, and the invocation succeeds."""

    @pytest.fixture
    def s3(self, monkeypatch, settings):
        server = MotoS3()
        client = store_model_data_in_s3(monkeypatch, settings, bucket="fma-aggregator-faults", endpoint_url=server.url)
        yield server, client
        if not server.running:
            server.start()
        server.stop()

    def test_s3_unreachable_fails_the_invocation_and_the_updates_stay_pending(self, s3):
        server, _ = s3
        model = make_model()
        updates = [make_update(model, [1.0, 3.0]), make_update(model, [3.0, 5.0])]
        server.stop()

        with pytest.raises(BotoCoreError):
            aggregator_initialization.handler({"model_id": model.pk}, None)

        assert statuses(*updates) == [Status.PENDING, Status.PENDING]
        server.start()
        aggregate_id = aggregator_initialization.handler({"model_id": model.pk}, None)
        assert result_of(ModelAggregate.objects.get(pk=aggregate_id)) == [2.0, 4.0]

    def test_an_update_whose_file_is_gone_is_failed_and_the_invocation_succeeds(self, s3):
        _, client = s3
        model = make_model()
        update = make_update(model, [1.0])
        client.delete_object(Bucket="fma-aggregator-faults", Key=update.data.name)

        assert aggregator_initialization.handler({"model_id": model.pk}, None) is None

        assert statuses(update) == [Status.FAILED]
