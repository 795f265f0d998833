"""request_aggregation: the trigger FMA_AGGREGATION_TRIGGER selects."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from moto import mock_aws
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda_simple.models import LambdaSimpleBackend

from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation.triggers import request_aggregation, wait_for_local_aggregations
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses

Status = ModelUpdate.Status
AGGREGATOR_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:fma-aggregator"


class TestLocalTrigger:
    pytestmark = pytest.mark.django_db(transaction=True)

    @pytest.fixture(autouse=True)
    def _local(self, settings):
        settings.FMA_AGGREGATION_TRIGGER = "local"
        yield
        assert wait_for_local_aggregations(30)

    def test_an_aggregate_is_made_in_the_background(self):
        model = make_model()
        updates = [
            make_update(model, [value], client=client)
            for value, client in zip([1.0, 2.0, 6.0], model.clients.all(), strict=True)
        ]

        request_aggregation(model_id=model.pk)

        assert wait_for_local_aggregations(30)
        aggregate = ModelAggregate.objects.get(federated_model=model)
        assert result_of(aggregate) == [3.0]
        assert statuses(*updates) == [Status.COMPLETE] * 3

    def test_a_burst_of_requests_runs_one_worker_per_model(self):
        model = make_model()
        updates = [make_update(model, [float(value)]) for value in range(10)]

        for _ in range(20):
            request_aggregation(model_id=model.pk)
        workers = [thread for thread in threading.enumerate() if thread.name == f"fma-aggregation-{model.pk}"]

        assert len(workers) <= 1
        assert wait_for_local_aggregations(30)
        assert statuses(*updates) == [Status.COMPLETE] * 10
        # The first run takes every update; the coalesced rerun finds nothing left.
        assert ModelAggregate.objects.filter(federated_model=model).count() == 1

    def test_a_failing_run_is_logged_and_the_worker_recovers(self, caplog):
        with caplog.at_level(logging.ERROR, logger="fma_django_connectors.aggregation.triggers"):
            request_aggregation(model_id=424242)
            assert wait_for_local_aggregations(30)
        assert "model 424242: in-process aggregation failed" in caplog.text

        model = make_model()
        make_update(model, [4.0])
        request_aggregation(model_id=model.pk)
        assert wait_for_local_aggregations(30)
        assert ModelAggregate.objects.filter(federated_model=model).exists()


class TestLambdaTrigger:
    @pytest.fixture
    def invocations(self, settings, monkeypatch):
        settings.FMA_AGGREGATION_TRIGGER = "lambda"
        settings.AGGREGATOR_LAMBDA_ARN = AGGREGATOR_ARN
        calls = []
        invoke = LambdaSimpleBackend.invoke

        def spy(backend, function_name, qualifier, body, headers, response_headers):
            calls.append(
                {"function": function_name, "body": body, "headers": dict(headers), "region": backend.region_name}
            )
            return invoke(backend, function_name, qualifier, body, headers, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", spy)
        with mock_aws(config={"lambda": {"use_docker": False}}):
            yield calls

    def test_the_aggregator_is_invoked_asynchronously_with_the_model_id(self, invocations):
        request_aggregation(model_id=17)

        (call,) = invocations
        assert call["function"] == AGGREGATOR_ARN
        assert json.loads(call["body"]) == {"model_id": 17}
        assert call["headers"]["X-Amz-Invocation-Type"] == "Event"
        assert call["region"] == "eu-west-1"

    def test_an_invoke_error_is_logged_not_raised(self, invocations, monkeypatch, caplog):
        def function_gone(backend, function_name, *args):
            raise UnknownFunctionException(function_name)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", function_gone)

        request_aggregation(model_id=17)

        assert "model 17: could not invoke the aggregator Lambda" in caplog.text
        assert f"Function not found: {AGGREGATOR_ARN}" in caplog.text

    def test_a_missing_arn_setting_is_logged_not_raised(self, invocations, settings, caplog):
        del settings.AGGREGATOR_LAMBDA_ARN

        request_aggregation(model_id=17)

        assert invocations == []
        assert "AGGREGATOR_LAMBDA_ARN" in caplog.text


def test_a_silent_lambda_endpoint_is_logged_not_waited_for(settings, monkeypatch, silent_endpoint, caplog):
    settings.FMA_AGGREGATION_TRIGGER = "lambda"
    settings.AGGREGATOR_LAMBDA_ARN = AGGREGATOR_ARN
    for name, value in {
        "AWS_ENDPOINT_URL": silent_endpoint,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)

    request_aggregation(model_id=17)

    assert "model 17: could not invoke the aggregator Lambda: AWS Lambda is unreachable (Read timeout" in caplog.text


@pytest.mark.django_db
def test_the_none_trigger_leaves_updates_pending(settings):
    settings.FMA_AGGREGATION_TRIGGER = "none"
    model = make_model()
    update = make_update(model, [1.0])

    request_aggregation(model_id=model.pk)

    assert wait_for_local_aggregations(1)
    assert statuses(update) == [Status.PENDING]


def test_an_unknown_trigger_names_the_setting_and_the_choices(settings):
    settings.FMA_AGGREGATION_TRIGGER = "celery"

    with pytest.raises(ConfigurationError) as error:
        request_aggregation(model_id=1)

    assert str(error.value) == (
        "Unknown aggregation trigger 'celery' (setting FMA_AGGREGATION_TRIGGER); registered: lambda, local, none"
    )
