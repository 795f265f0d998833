"""Authentication: Basic, Token, Session (+CSRF), CLIENT-UUID, the token endpoint and ``register_client``."""

from __future__ import annotations

import uuid

import pytest
from rest_framework import status
from rest_framework.test import APIClient

from fma_django_connectors.models import Client

from .conftest import FORBIDDEN, NOT_AUTHENTICATED, PASSWORD, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

MODELS = "/api/v1/models/"


def register_url(model) -> str:
    return f"/api/v1/models/{model.pk}/register_client/"


class TestNoCredentials:
    @pytest.mark.parametrize(
        "path",
        [MODELS, "/api/v1/model_updates/", "/api/v1/model_aggregates/", "/api/v1/client_aggregate_scores/"],
    )
    def test_list_is_401_with_the_contract_body(self, anonymous_api, path, db):
        response = anonymous_api.get(path)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == NOT_AUTHENTICATED

    def test_model_detail_is_401(self, anonymous_api, model):
        response = anonymous_api.get(f"{MODELS}{model.pk}/")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == NOT_AUTHENTICATED

    def test_create_update_is_401(self, anonymous_api, model):
        response = anonymous_api.post(
            "/api/v1/model_updates/", {"federated_model": model.pk, "data": [1]}, format="json"
        )
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == NOT_AUTHENTICATED


class TestBasic:
    def test_developer_lists_models(self, developer_api, model):
        response = developer_api.get(MODELS)
        assert response.status_code == status.HTTP_200_OK
        assert [item["id"] for item in response.json()] == [model.pk]

    def test_wrong_password_is_401(self, developer, model):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION="Basic " + "YWRhOndyb25n")  # ada:wrong
        response = api.get(MODELS)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "Invalid username/password."}


class TestToken:
    def test_token_endpoint_gives_a_key_that_authenticates(self, developer, model):
        response = APIClient().post(
            "/api-token-auth/", {"username": developer.username, "password": PASSWORD}, format="json"
        )
        assert response.status_code == status.HTTP_200_OK
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        listed = api.get(MODELS)
        assert listed.status_code == status.HTTP_200_OK
        assert [item["id"] for item in listed.json()] == [model.pk]

    def test_token_endpoint_rejects_bad_credentials(self, developer):
        response = APIClient().post(
            "/api-token-auth/", {"username": developer.username, "password": "no"}, format="json"
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}

    def test_unknown_token_is_401(self, db):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION="Token 0000")
        response = api.get(MODELS)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "Invalid token."}


class TestSession:
    def test_logged_in_session_reads(self, developer, model):
        api = APIClient(enforce_csrf_checks=True)
        assert api.login(username=developer.username, password=PASSWORD)
        response = api.get(MODELS)
        assert response.status_code == status.HTTP_200_OK
        assert [item["id"] for item in response.json()] == [model.pk]

    def test_unsafe_method_without_csrf_token_is_403(self, developer):
        api = APIClient(enforce_csrf_checks=True)
        api.login(username=developer.username, password=PASSWORD)
        response = api.post(MODELS, {"name": "m", "aggregator": "avg_values_if_data"}, format="json")
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json()["detail"].startswith("CSRF Failed")

    def test_unsafe_method_with_csrf_token_succeeds(self, developer):
        api = APIClient(enforce_csrf_checks=True)
        api.login(username=developer.username, password=PASSWORD)
        api.get("/admin/login/")  # sets the csrftoken cookie
        token = api.cookies["csrftoken"].value
        response = api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data"}, format="json", HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == status.HTTP_201_CREATED


class TestClientUUID:
    def test_malformed_uuid_is_401_naming_the_value(self, model):
        api = APIClient()
        api.credentials(HTTP_CLIENT_UUID="not-a-uuid")
        response = api.get(f"{MODELS}{model.pk}/get_latest_model/")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": '"not-a-uuid" is not a valid UUID.'}

    def test_empty_uuid_is_malformed(self, model):
        api = APIClient()
        api.credentials(HTTP_CLIENT_UUID="")
        response = api.post(register_url(model))
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": '"" is not a valid UUID.'}

    def test_unknown_uuid_is_401_invalid_uuid(self, model):
        api = APIClient()
        api.credentials(HTTP_CLIENT_UUID=str(uuid.uuid4()))
        for response in (api.get("/api/v1/model_updates/"), api.post(register_url(model))):
            assert response.status_code == status.HTTP_401_UNAUTHORIZED
            assert response.json() == {"detail": "Invalid UUID"}

    def test_client_on_developer_only_endpoint_is_403(self, fed_client_api, model):
        for response in (
            fed_client_api.get(MODELS),
            fed_client_api.get(f"{MODELS}{model.pk}/"),
            fed_client_api.post(MODELS, {"name": "m", "aggregator": "avg_values_if_data"}, format="json"),
            fed_client_api.delete(f"{MODELS}{model.pk}/"),
        ):
            assert response.status_code == status.HTTP_403_FORBIDDEN
            assert response.json() == FORBIDDEN


class TestRegisterClient:
    def test_anonymous_gets_a_new_registered_client(self, anonymous_api, model):
        response = anonymous_api.post(register_url(model))
        assert response.status_code == status.HTTP_200_OK
        new = uuid.UUID(response.json()["uuid"])
        assert list(model.clients.values_list("uuid", flat=True)) == [new]

    def test_with_client_uuid_registers_that_client_idempotently(self, other_model, fed_client):
        api = uuid_client(fed_client)
        first = api.post(register_url(other_model))
        second = api.post(register_url(other_model))
        assert first.status_code == second.status_code == status.HTTP_200_OK
        assert first.json() == second.json() == {"uuid": str(fed_client.uuid)}
        assert list(other_model.clients.all()) == [fed_client]
        assert Client.objects.count() == 1

    def test_unknown_model_is_404(self, anonymous_api, db):
        response = anonymous_api.post("/api/v1/models/999999/register_client/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == {"detail": "No FederatedModel matches the given query."}
