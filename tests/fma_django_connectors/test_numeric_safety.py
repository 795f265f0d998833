"""Numeric safety through the API and the database: ingest bounds, and a non-finite aggregation's reason."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework import status

from fma_core.connectors.base import ClaimKey
from fma_core.workflows.aggregation import agg_service
from fma_django_connectors import selectors, services
from fma_django_connectors.connectors.metadata import DjangoMetadataConnector
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import (
    make_aggregate,
    make_model,
    make_update,
    result_of,
    run_killed_before_recording,
    statuses,
)
from tests.storage_faults import stored_files

from .conftest import uuid_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

UPDATES = "/api/v1/model_updates/"
MODELS = "/api/v1/models/"
HUGE = 1.7e308


class TestUpdateMaxNorm:
    @pytest.fixture
    def bounded(self, model):
        model.update_max_norm = 5.0
        model.save()
        return model

    def test_an_update_within_the_bound_is_accepted(self, bounded, fed_client_api):
        response = fed_client_api.post(UPDATES, {"federated_model": bounded.pk, "data": [3.0, 4.0]}, format="json")
        assert response.status_code == status.HTTP_201_CREATED

    @pytest.mark.parametrize(
        ("data", "norm"), [([3.0, 4.1], "5.08035"), ([[HUGE], [HUGE]], "inf"), ([[6.0], [0.0]], "6")]
    )
    def test_an_update_beyond_the_bound_is_a_400_naming_its_norm(self, bounded, fed_client_api, data, norm):
        response = fed_client_api.post(UPDATES, {"federated_model": bounded.pk, "data": data}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": f"the update's L2 norm {norm} is greater than the model's update_max_norm 5"}
        assert not ModelUpdate.objects.exists()

    @pytest.mark.parametrize("value", [0, -1.5, "NaN", "Infinity"])
    def test_the_bound_must_be_a_positive_finite_number(self, developer_api, value):
        body = {"name": "m", "aggregator": "avg_values_if_data", "update_max_norm": value}
        response = developer_api.post(MODELS, body, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert list(response.json()) == ["update_max_norm"]

    def test_the_bound_is_kept_and_shown(self, developer_api):
        body = {"name": "m", "aggregator": "avg_values_if_data", "update_max_norm": 10}
        response = developer_api.post(MODELS, body, format="json")
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["update_max_norm"] == 10.0


class TestNonFiniteAggregation:
    def test_a_mean_of_huge_updates_is_stored_finite(self):
        model = make_model()
        clients = list(model.clients.all())
        for client in clients[:2]:
            make_update(model, [HUGE, 1.0], client=client)

        aggregate_id = agg_service(model.pk)

        assert aggregate_id is not None
        assert ModelAggregate.objects.get(pk=aggregate_id).result.size > 0

    def test_the_update_at_fault_is_invalid_and_its_client_reads_why(self):
        # Prepare: FedAdam from a global model; one client's delta squares to inf.
        model = make_model(aggregator="fed_adam")
        make_aggregate(model, [0.0, 0.0])
        honest_client, bad_client = list(model.clients.all())[:2]
        honest = make_update(model, [1.0, 2.0], client=honest_client)
        poisoned = make_update(model, [HUGE, 1.0], client=bad_client)

        # Execute
        assert agg_service(model.pk) is None

        # Assert: the reason names the model; the honest update waits for the next run.
        assert statuses(honest, poisoned) == [ModelUpdate.Status.PENDING, ModelUpdate.Status.INVALID]
        body = uuid_client(bad_client).get(f"{UPDATES}{poisoned.pk}/").json()
        assert body["status"] == ModelUpdate.Status.INVALID
        assert body["status_reason"].startswith(f"model {model.pk}: fed_adam gave a non-finite state")
        assert agg_service(model.pk) is not None
        assert statuses(honest) == [ModelUpdate.Status.COMPLETE]


class TestLiveness:
    def test_models_with_pending_work_are_those_allowed_with_updates_to_take(self):
        idle, waiting, paused = make_model(), make_model(), make_model(allow_aggregation=False)
        make_update(waiting, [1.0])
        make_update(paused, [1.0])
        make_update(idle, [1.0], status=ModelUpdate.Status.COMPLETE)

        assert selectors.models_with_pending_work() == [waiting.pk]

    def test_a_renewed_claim_is_not_taken_back_and_an_unrenewed_one_is(self):
        model = make_model()
        renewed, abandoned = make_update(model, [1.0]), make_update(model, [2.0])
        metadata = DjangoMetadataConnector()
        claimed_at = datetime.now(UTC) - timedelta(minutes=5)
        assert sorted(metadata.claim_updates(model.pk, [renewed.pk, abandoned.pk], claimed_at=claimed_at)) == sorted(
            [renewed.pk, abandoned.pk]
        )
        metadata.renew_claim([renewed.pk], claimed_at=claimed_at, renewed_at=datetime.now(UTC))

        assert metadata.reclaim_expired(model.pk, claimed_before=datetime.now(UTC) - timedelta(minutes=1)) == [
            ClaimKey(model_id=model.pk, claimed_at=claimed_at, first_update_id=abandoned.pk)
        ]
        assert statuses(renewed, abandoned) == [ModelUpdate.Status.RUNNING, ModelUpdate.Status.PENDING]


class TestKilledBeforeRecording:
    def test_a_result_written_but_never_recorded_goes_with_its_expired_claim_and_its_updates_are_aggregated_once(
        self, media_root
    ):
        # Prepare: a run that stored its result and died before recording it (claim five minutes old, lease one
        # minute), and a run at work that stored its result and is recording it (claimed now).
        model = make_model(clients=4)
        clients = list(model.clients.all())
        abandoned = [make_update(model, [float(value)], client=c) for value, c in enumerate(clients[:3])]
        working = make_update(model, [10.0], client=clients[3])
        orphan = run_killed_before_recording(
            model, abandoned, claimed_at=datetime.now(UTC) - timedelta(minutes=5), values=[99.0]
        )
        in_flight = run_killed_before_recording(model, [working], claimed_at=datetime.now(UTC), values=[10.0])

        # Execute
        aggregate_id = agg_service(model.pk)

        # Assert: the dead run's updates are in one aggregate and its result is gone; the live run's file is kept.
        assert {ModelUpdate.objects.get(pk=u.pk).applied_aggregate_id for u in abandoned} == {aggregate_id}
        assert result_of(ModelAggregate.objects.get(pk=aggregate_id)) == [1.0]
        assert statuses(working) == [ModelUpdate.Status.RUNNING]
        assert stored_files(media_root / "aggregates") == sorted(
            name.removeprefix("aggregates/")
            for name in (in_flight, ModelAggregate.objects.get(pk=aggregate_id).result.name)
        )
        assert orphan != in_flight

    def test_results_under_older_names_that_no_aggregate_records_are_deleted_once_older_than_the_lease(
        self, media_root
    ):
        # Prepare: result files named by a uuid, as before results were named by their claim.
        model = make_model()
        recorded = make_aggregate(model, [1.0]).result.name
        orphan, fresh = (make_aggregate(model, [2.0]), make_aggregate(model, [3.0]))
        orphan_name, fresh_name = orphan.result.name, fresh.result.name
        ModelAggregate.objects.filter(pk__in=[orphan.pk, fresh.pk]).delete()
        five_minutes_ago = (datetime.now(UTC) - timedelta(minutes=5)).timestamp()
        for name in (recorded, orphan_name):
            os.utime(media_root / name, (five_minutes_ago, five_minutes_ago))

        # Execute
        deleted = services.aggregate_orphans_delete(written_before=datetime.now(UTC) - timedelta(minutes=1))

        # Assert: the old file nobody records is gone; a fresh one (maybe being recorded) and the recorded one stay.
        assert deleted == [orphan_name]
        assert stored_files(media_root / "aggregates") == sorted(
            name.removeprefix("aggregates/") for name in (recorded, fresh_name)
        )
