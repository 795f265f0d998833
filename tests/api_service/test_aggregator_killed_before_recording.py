"""The aggregator Lambda after a run killed between storing its result in S3 and recording the aggregate.

Model data lives in a moto S3 bucket, stored as ``settings_remote`` stores it. The killed run is built from its
own connector calls (its claim, then its result stored under the claim's name; see
``tests/integration/test_aggregator_killed_before_recording.py`` for a real process killed at that step). The
next scheduled invocations run through ``aggregator_initialization.handler``, and the bucket is listed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

import aggregator_initialization
from fma_core.aws import aws_client
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import (
    make_model,
    make_update,
    result_of,
    run_killed_before_recording,
    statuses,
)
from tests.s3_storage import store_model_data_in_s3

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_test_connection")]

Status = ModelUpdate.Status
BUCKET = "fma-model-data"
SCHEDULED = "Scheduled Event"


@pytest.fixture
def bucket(settings, monkeypatch):
    """A moto S3 bucket holding the model data, with the storage options of ``settings_remote``."""
    with mock_aws():
        yield store_model_data_in_s3(monkeypatch, settings, bucket=BUCKET, file_overwrite=False)
    aws_client.cache_clear()


def _keys(bucket) -> list[str]:
    return sorted(item["Key"] for item in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def _scheduled(model) -> dict:
    return {"version": "0", "detail-type": SCHEDULED, "source": "aws.events", "detail": {"model_id": model.pk}}


def _lease() -> timedelta:
    # The lease of the connector the Lambda built at its cold start.
    return aggregator_initialization._connector.claim_lease


class TestAKilledRunsResult:
    def test_after_the_lease_the_next_scheduled_run_aggregates_its_updates_once_and_deletes_its_result(self, bucket):
        # Prepare: the killed run claimed the updates well over a lease ago and stored its result.
        model = make_model()
        updates = [make_update(model, [float(value), 3.0], client=c) for value, c in enumerate(model.clients.all())]
        orphan = run_killed_before_recording(
            model, updates, claimed_at=datetime.now(UTC) - 2 * _lease(), values=[99.0, 99.0]
        )
        left_by_the_kill = _keys(bucket)

        # Execute: the schedule fires twice.
        aggregate_id = aggregator_initialization.handler(_scheduled(model), None)
        second = aggregator_initialization.handler(_scheduled(model), None)

        # Assert: every update is in the one aggregate, counted once; the bucket holds the updates and that
        # aggregate's result, and no longer the killed run's.
        assert orphan in left_by_the_kill
        aggregate = ModelAggregate.objects.get()
        assert (aggregate_id, second) == (aggregate.pk, None)
        assert statuses(*updates) == [Status.COMPLETE] * len(updates)
        assert {ModelUpdate.objects.get(pk=u.pk).applied_aggregate_id for u in updates} == {aggregate.pk}
        assert result_of(aggregate) == [1.0, 3.0]
        assert _keys(bucket) == sorted([*(u.data.name for u in updates), aggregate.result.name])

    def test_a_run_still_within_its_lease_keeps_its_result_and_its_updates(self, bucket):
        # Prepare: a run claimed the updates a moment ago and stored its result; it may be recording it now.
        model = make_model()
        updates = [make_update(model, [float(value)], client=c) for value, c in enumerate(model.clients.all())]
        result = run_killed_before_recording(model, updates, claimed_at=datetime.now(UTC), values=[1.0])
        before = _keys(bucket)

        # Execute
        aggregate_id = aggregator_initialization.handler(_scheduled(model), None)

        # Assert: nothing taken from the run: its updates are still its own, its result is still there.
        assert aggregate_id is None
        assert result in before
        assert _keys(bucket) == before
        assert statuses(*updates) == [Status.RUNNING] * len(updates)
        assert not ModelAggregate.objects.exists()
