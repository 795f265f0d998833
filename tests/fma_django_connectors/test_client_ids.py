"""How developers see and name clients: public ids on ``signed`` models (never the uuid), uuids on ``uuid`` ones."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client as BrowserClient
from rest_framework import status
from rest_framework.test import APIClient

from fma_django_connectors import client_ids, services
from fma_django_connectors.models import Client, ClientAggregateScore, FederatedModel

from .conftest import PASSWORD, SIGNED_MODEL_WEIGHTS, basic_client, make_aggregate, uuid_client
from .test_signed_clients import latest

WEIGHTS = SIGNED_MODEL_WEIGHTS

pytestmark = pytest.mark.usefixtures("media_root")


@pytest.fixture
def signed_rows(signer, signed_model):
    """On the signed model: an aggregate, an update and a score of ``signer``, each sent signed."""
    aggregate = make_aggregate(signed_model, WEIGHTS)
    update = signer.call("POST", "/api/v1/model_updates/", {"federated_model": signed_model.pk, "data": WEIGHTS})
    assert update.status_code == status.HTTP_201_CREATED, update.json()
    score = signer.call(
        "POST", "/api/v1/client_aggregate_scores/", {"aggregate": aggregate.pk, "validation_results": {"acc": 0.5}}
    )
    assert score.status_code == status.HTTP_201_CREATED, score.json()
    return {"aggregate": aggregate, "update": update.json()["id"], "score": score.json()["id"]}


def public_id(signer) -> str:
    return client_ids.client_public_id(signer.uuid)


class TestPublicId:
    def test_is_stable_shaped_and_not_a_uuid(self):
        client_uuid = uuid.uuid4()
        value = client_ids.client_public_id(client_uuid)
        assert value == client_ids.client_public_id(str(client_uuid))
        assert client_ids.is_public_id(value)
        assert client_uuid.hex not in value
        with pytest.raises(ValueError, match="badly formed"):
            uuid.UUID(value)

    def test_the_database_finds_what_python_computes(self, db):
        clients = [services.client_create() for _ in range(5)]
        for client in clients:
            found = client_ids.filter_by_public_id(Client.objects.all(), client_ids.client_public_id(client.uuid))
            assert list(found) == [client]
        assert not client_ids.filter_by_public_id(Client.objects.all(), "client:" + "0" * 32).exists()


class TestDevelopersOfSignedModelsNeverSeeTheUuid:
    def reads(self, api, signed_model, rows):
        paths = [
            "/api/v1/models/",
            f"/api/v1/models/{signed_model.pk}/",
            "/api/v1/model_updates/",
            f"/api/v1/model_updates/{rows['update']}/",
            "/api/v1/client_aggregate_scores/",
            f"/api/v1/client_aggregate_scores/{rows['score']}/",
        ]
        return {path: api.get(path) for path in paths}

    @pytest.mark.parametrize("caller", ["developer", "staff"])
    def test_updates_scores_and_models(self, request, signer, signed_model, signed_rows, caller):
        api = basic_client(request.getfixturevalue(caller))
        for path, response in self.reads(api, signed_model, signed_rows).items():
            assert response.status_code == status.HTTP_200_OK, path
            body = response.content.decode()
            assert signer.uuid not in body, path
            assert uuid.UUID(signer.uuid).hex not in body, path
            assert public_id(signer) in body, path

    def test_the_client_field_is_the_public_id(self, developer_api, signer, signed_model, signed_rows):
        reads = self.reads(developer_api, signed_model, signed_rows)
        assert reads[f"/api/v1/models/{signed_model.pk}/"].json()["clients"] == [public_id(signer)]
        assert reads[f"/api/v1/model_updates/{signed_rows['update']}/"].json()["client"] == public_id(signer)
        assert [row["client"] for row in reads["/api/v1/model_updates/"].json()] == [public_id(signer)]
        assert reads[f"/api/v1/client_aggregate_scores/{signed_rows['score']}/"].json()["client"] == public_id(signer)

    def test_changing_an_update(self, developer_api, signer, signed_rows):
        response = developer_api.patch(f"/api/v1/model_updates/{signed_rows['update']}/", {"status": 3}, format="json")
        assert response.status_code == status.HTTP_200_OK
        assert response.json()["client"] == public_id(signer)
        assert signer.uuid not in response.content.decode()

    def test_the_dashboard(self, developer, signer, signed_model, signed_rows):
        browser = BrowserClient()
        assert browser.login(username=developer.username, password=PASSWORD)
        page = browser.get(f"/dashboard/models/{signed_model.pk}/").content.decode()
        assert f'data-client="{public_id(signer)}"' in page
        assert signer.uuid not in page
        assert uuid.UUID(signer.uuid).hex not in page

    def test_a_client_without_a_key_has_a_public_id_too(self, developer, developer_api):
        # Registered while the model took uuids; the model became signed later.
        model = services.model_create(developer=developer, name="late", aggregator="avg_values_if_data")
        client = services.client_register(model=model)
        assert (
            developer_api.patch(f"/api/v1/models/{model.pk}/", {"client_auth": "signed"}, format="json").status_code
            == 200
        )
        body = developer_api.get(f"/api/v1/models/{model.pk}/").json()
        assert body["clients"] == [client_ids.client_public_id(client.uuid)]

    @pytest.mark.parametrize("shown", ["public_id", "hex_digits"])
    def test_what_they_see_opens_nothing_as_client_uuid(self, signer, signed_model, signed_rows, shown):
        value = public_id(signer) if shown == "public_id" else public_id(signer).removeprefix("client:")
        thief = APIClient()
        thief.credentials(HTTP_CLIENT_UUID=value)
        for path in (latest(signed_model), "/api/v1/model_updates/", "/api/v1/client_aggregate_scores/"):
            response = thief.get(path)
            assert response.status_code == status.HTTP_401_UNAUTHORIZED, path
        registered = thief.post(f"/api/v1/models/{signed_model.pk}/register_client/")
        assert registered.status_code == status.HTTP_401_UNAUTHORIZED
        assert signed_model.clients.count() == 1


class TestDevelopersNameClientsOfSignedModelsByPublicId:
    def test_posting_a_score(self, developer_api, signer, signed_model):
        aggregate = make_aggregate(signed_model, WEIGHTS)
        body = {"aggregate": aggregate.pk, "client": public_id(signer), "validation_results": {"acc": 1.0}}
        response = developer_api.post("/api/v1/client_aggregate_scores/", body, format="json")
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        assert response.json()["client"] == public_id(signer)
        assert ClientAggregateScore.objects.get().client_id == uuid.UUID(signer.uuid)
        again = developer_api.post("/api/v1/client_aggregate_scores/", body, format="json")
        assert again.status_code == status.HTTP_400_BAD_REQUEST
        assert again.json() == {"detail": f"Client {public_id(signer)} has already scored aggregate {aggregate.pk}."}

    def test_posting_an_update(self, developer_api, signer, signed_model):
        body = {"federated_model": signed_model.pk, "client": public_id(signer), "data": WEIGHTS}
        response = developer_api.post("/api/v1/model_updates/", body, format="json")
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        assert response.json()["client"] == public_id(signer)

    def test_starting_an_upload(self, developer_api, signer, signed_model):
        body = {"federated_model": signed_model.pk, "client": public_id(signer), "format": "json", "size": 10}
        response = developer_api.post("/api/v1/uploads/", body, format="json")
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        assert signer.uuid not in response.content.decode()

    def test_the_uuid_still_names_it(self, developer_api, signer, signed_model):
        body = {"federated_model": signed_model.pk, "client": signer.uuid, "data": WEIGHTS}
        response = developer_api.post("/api/v1/model_updates/", body, format="json")
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["client"] == public_id(signer)

    def test_filtering_scores(self, developer_api, signer, signed_model, signed_rows):
        other = services.client_register(model=signed_model)
        services.score_create(aggregate=signed_rows["aggregate"], client=other, validation_results={"acc": 0.1})
        listed = developer_api.get(f"/api/v1/client_aggregate_scores/?client={public_id(signer)}").json()
        assert [row["id"] for row in listed] == [signed_rows["score"]]
        by_uuid = developer_api.get(f"/api/v1/client_aggregate_scores/?client={signer.uuid}").json()
        assert [row["id"] for row in by_uuid] == [signed_rows["score"]]
        unknown = developer_api.get("/api/v1/client_aggregate_scores/?client=client:" + "0" * 32)
        assert unknown.json() == []

    def test_the_clients_it_reads_can_be_written_back(self, developer_api, signer, signed_model):
        clients = developer_api.get(f"/api/v1/models/{signed_model.pk}/").json()["clients"]
        response = developer_api.patch(f"/api/v1/models/{signed_model.pk}/", {"clients": clients}, format="json")
        assert response.status_code == status.HTTP_200_OK, response.json()
        assert response.json()["clients"] == [public_id(signer)]
        assert [str(client.uuid) for client in signed_model.clients.all()] == [signer.uuid]

    def test_another_developers_client_is_unknown(self, other_developer_api, other_model, signer, signed_model):
        body = {"federated_model": other_model.pk, "client": public_id(signer), "data": WEIGHTS}
        response = other_developer_api.post("/api/v1/model_updates/", body, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"client": [f'Invalid pk "{public_id(signer)}" - object does not exist.']}


class TestUuidModels:
    """A public id never names a ``uuid`` model's client: the answer would show its uuid."""

    @pytest.fixture
    def both(self, developer, signer, signed_model):
        """A uuid model of the same developer that ``signer`` is not registered to."""
        return services.model_create(developer=developer, name="plain", aggregator="avg_values_if_data")

    def test_naming_a_public_id_for_a_uuid_model_is_an_unknown_client(self, developer_api, signer, both):
        services.client_register(model=both, client=Client.objects.get(uuid=signer.uuid))
        cases = [
            ("/api/v1/model_updates/", {"federated_model": both.pk, "client": public_id(signer), "data": WEIGHTS}),
            (
                "/api/v1/client_aggregate_scores/",
                {
                    "aggregate": make_aggregate(both, WEIGHTS).pk,
                    "client": public_id(signer),
                    "validation_results": {"acc": 1.0},
                },
            ),
            (
                "/api/v1/uploads/",
                {"federated_model": both.pk, "client": public_id(signer), "format": "json", "size": 9},
            ),
        ]
        for path, body in cases:
            response = developer_api.post(path, body, format="json")
            assert response.status_code == status.HTTP_400_BAD_REQUEST, path
            assert response.json() == {"client": [f'Invalid pk "{public_id(signer)}" - object does not exist.']}, path
        response = developer_api.patch(f"/api/v1/models/{both.pk}/", {"clients": [public_id(signer)]}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"clients": [f'Invalid pk "{public_id(signer)}" - object does not exist.']}

    def test_reads_keep_the_uuid(self, developer_api, model, fed_client):
        aggregate = make_aggregate(model, WEIGHTS)
        sent = uuid_client(fed_client).post(
            "/api/v1/model_updates/", {"federated_model": model.pk, "data": WEIGHTS}, format="json"
        )
        services.score_create(aggregate=aggregate, client=fed_client, validation_results={"acc": 1.0})
        assert developer_api.get(f"/api/v1/models/{model.pk}/").json()["clients"] == [str(fed_client.uuid)]
        assert developer_api.get(f"/api/v1/model_updates/{sent.json()['id']}/").json()["client"] == str(fed_client.uuid)
        scores = developer_api.get(f"/api/v1/client_aggregate_scores/?client={fed_client.uuid}").json()
        assert [row["client"] for row in scores] == [str(fed_client.uuid)]
        assert client_ids.client_public_id(fed_client.uuid) not in json.dumps(scores)


class TestClientAuthChanges:
    def test_a_signed_model_with_clients_stays_signed(self, developer_api, signer, signed_model):
        response = developer_api.patch(f"/api/v1/models/{signed_model.pk}/", {"client_auth": "uuid"}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["client_auth"][0].startswith("A signed model with clients stays signed")
        signed_model.refresh_from_db()
        assert signed_model.client_auth == FederatedModel.ClientAuth.SIGNED

    def test_a_signed_model_without_clients_may_change(self, developer_api, signed_model):
        response = developer_api.patch(f"/api/v1/models/{signed_model.pk}/", {"client_auth": "uuid"}, format="json")
        assert response.status_code == status.HTTP_200_OK

    def test_its_client_reads_its_own_uuid(self, signer, signed_rows):
        listed = signer.call("GET", "/api/v1/model_updates/").json()
        assert [row["client"] for row in listed] == [signer.uuid]
