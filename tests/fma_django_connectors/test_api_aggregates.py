"""``/api/v1/model_aggregates/``: scoping, filters, ordering and ``publish_aggregate``."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from rest_framework import status

from fma_django_connectors.models import ModelArtifact

from .conftest import FORBIDDEN, basic_client, make_aggregate, make_model, stored_files

pytestmark = pytest.mark.usefixtures("media_root")

AGGREGATES = "/api/v1/model_aggregates/"
NO_AGGREGATE = {"detail": "No ModelAggregate matches the given query."}


def publish_url(aggregate) -> str:
    return f"{AGGREGATES}{aggregate.pk}/publish_aggregate/"


@pytest.fixture
def aggregates(model, other_model):
    first = make_aggregate(model, [1.0, 2.0], validation_score=0.5)
    second = make_aggregate(model, [[1, 2], [3]], parent=first, validation_score=0.9)
    third = make_aggregate(model, [0.0, 0.0], parent=second, validation_score=0.1)
    foreign = make_aggregate(other_model, [5.0], validation_score=0.7)
    return {"first": first, "second": second, "third": third, "foreign": foreign}


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()]


class TestRead:
    def test_result_is_inlined(self, developer_api, aggregates, model):
        second = aggregates["second"]
        body = developer_api.get(f"{AGGREGATES}{second.pk}/").json()
        assert body == {
            "id": second.pk,
            "federated_model": model.pk,
            "parent": aggregates["first"].pk,
            "result": [[1, 2], [3]],
            "validation_score": 0.9,
            "created_on": body["created_on"],
        }

    def test_developer_scope(self, developer_api, aggregates):
        expected = [aggregates[name].pk for name in ("third", "second", "first")]
        assert ids(developer_api.get(AGGREGATES)) == expected
        response = developer_api.get(f"{AGGREGATES}{aggregates['foreign'].pk}/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_AGGREGATE

    def test_client_sees_models_it_is_registered_to(self, fed_client_api, fed_client, aggregates, other_model):
        assert len(ids(fed_client_api.get(AGGREGATES))) == 3
        assert fed_client_api.get(f"{AGGREGATES}{aggregates['foreign'].pk}/").status_code == status.HTTP_404_NOT_FOUND
        other_model.clients.add(fed_client)
        assert len(ids(fed_client_api.get(AGGREGATES))) == 4

    def test_staff_sees_all(self, staff_api, aggregates):
        assert len(ids(staff_api.get(AGGREGATES))) == 4

    def test_filter_and_ordering(self, staff_api, aggregates, other_model):
        assert ids(staff_api.get(AGGREGATES, {"federated_model": other_model.pk})) == [aggregates["foreign"].pk]
        by_score = ids(
            staff_api.get(
                AGGREGATES, {"federated_model": aggregates["first"].federated_model_id, "ordering": "validation_score"}
            )
        )
        assert by_score == [aggregates[name].pk for name in ("third", "first", "second")]
        by_score_desc = ids(staff_api.get(AGGREGATES, {"ordering": "-validation_score", "page_size": 2}))
        assert by_score_desc == [aggregates["second"].pk, aggregates["foreign"].pk]
        oldest_first = ids(staff_api.get(AGGREGATES, {"ordering": "created_on", "federated_model": other_model.pk}))
        assert oldest_first == [aggregates["foreign"].pk]

    @pytest.mark.parametrize("value", ["abc", "1.5", "1e3"])
    def test_filter_id_that_is_not_a_whole_number_is_400(self, staff_api, aggregates, value):
        response = staff_api.get(AGGREGATES, {"federated_model": value})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": ["Enter a whole number."]}

    @pytest.mark.parametrize("value", ["99999999999999999999999", "-99999999999999999999999"])
    def test_filter_id_out_of_database_range_is_an_empty_list(self, staff_api, aggregates, value):
        response = staff_api.get(AGGREGATES, {"federated_model": value})
        assert response.status_code == status.HTTP_200_OK
        assert response.json() == []

    def test_anonymous_is_401(self, anonymous_api, aggregates):
        response = anonymous_api.get(f"{AGGREGATES}{aggregates['first'].pk}/")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED


class TestPublish:
    def test_publish_makes_the_current_artifact(self, developer_api, aggregates, model):
        response = developer_api.post(publish_url(aggregates["second"]), {"version": "2.0.0"}, format="json")
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert body == {
            "id": body["id"],
            "values": [[1, 2], [3]],
            "version": "2.0.0",
            "federated_model": model.pk,
            "created_on": body["created_on"],
        }
        model.refresh_from_db()
        assert model.current_artifact_id == body["id"]
        assert developer_api.get(f"/api/v1/models/{model.pk}/get_current_artifact/").json() == body
        # The artifact keeps the structure of the aggregate it copies.
        artifact = model.current_artifact
        assert (artifact.structure, artifact.parameter_count, artifact.byte_size) == (
            aggregates["second"].structure,
            3,
            24,
        )

    def test_duplicate_version_is_400(self, developer, developer_api, media_root):
        model = make_model(developer, initial_model=[1.0])
        aggregate = make_aggregate(model, [2.0])
        before = stored_files(media_root)
        response = developer_api.post(publish_url(aggregate), {"version": "1.0.0"}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"version": f"Model {model.pk} already has an artifact of version '1.0.0'."}
        assert stored_files(media_root) == before
        assert ModelArtifact.objects.count() == 1

    def test_missing_version_is_400(self, developer_api, aggregates):
        response = developer_api.post(publish_url(aggregates["first"]), {}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"version": ["This field is required."]}

    def test_client_may_not_publish(self, fed_client_api, aggregates):
        response = fed_client_api.post(publish_url(aggregates["first"]), {"version": "2"}, format="json")
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == FORBIDDEN

    def test_other_developer_gets_404(self, other_developer_api, aggregates):
        response = other_developer_api.post(publish_url(aggregates["first"]), {"version": "2"}, format="json")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_AGGREGATE

    def test_staff_may_publish_any(self, staff_api, aggregates):
        response = staff_api.post(publish_url(aggregates["foreign"]), {"version": "9"}, format="json")
        assert response.status_code == status.HTTP_201_CREATED


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_publish_losing_a_race_on_the_version_is_400(developer, media_root):
    """Another transaction inserts the same version after our check: the unique index decides, and we answer 400."""
    model = make_model(developer)
    aggregate = make_aggregate(model, [1.0])
    holding = threading.Event()

    def insert_same_version_then_commit() -> None:
        try:
            with transaction.atomic():
                ModelArtifact.objects.create(federated_model=model, version="2.0.0", values="artifacts/held.npz")
                holding.set()
                # Commit only after the request has passed its own duplicate check and waits on the index.
                threading.Event().wait(1.0)
        finally:
            connection.close()

    holder = threading.Thread(target=insert_same_version_then_commit)
    holder.start()
    assert holding.wait(10)
    response = basic_client(developer).post(publish_url(aggregate), {"version": "2.0.0"}, format="json")
    holder.join()
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"version": f"Model {model.pk} already has an artifact of version '2.0.0'."}
    assert [name for name in stored_files(media_root) if name.startswith("artifacts/")] == []
    assert list(ModelArtifact.objects.values_list("values", flat=True)) == ["artifacts/held.npz"]
