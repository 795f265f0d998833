"""Signed client requests (``client_auth: "signed"``): a stolen uuid, replays, clock skew, wrong keys."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from rest_framework import status
from rest_framework.test import APIClient

from fma_core import signatures
from fma_django_connectors.access.permissions import SIGNATURE_REQUIRED
from fma_django_connectors.client_ids import client_public_id
from fma_django_connectors.models import Client, ModelUpdate

from .conftest import SIGNED_MODEL_WEIGHTS, SignedClient, make_aggregate, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

WEIGHTS = SIGNED_MODEL_WEIGHTS


def latest(model):
    return f"/api/v1/models/{model.pk}/get_latest_model/"


class TestRegistration:
    def test_the_server_stores_only_the_public_key(self, signer):
        stored = Client.objects.get(uuid=signer.uuid)
        assert bytes(stored.public_key) == base64.b64decode(signatures.public_key_text(signer.key))

    def test_a_new_client_without_a_key_is_400(self, anonymous_api, signed_model):
        response = anonymous_api.post(f"/api/v1/models/{signed_model.pk}/register_client/")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "public_key": "This model takes signed requests only: register with your Ed25519 public_key."
        }
        assert not Client.objects.exists()

    @pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"short").decode()])
    def test_a_malformed_key_is_400(self, anonymous_api, signed_model, key):
        response = anonymous_api.post(
            f"/api/v1/models/{signed_model.pk}/register_client/", {"public_key": key}, format="json"
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "public_key" in response.json()

    def test_a_known_uuid_client_cannot_join_unsigned(self, signed_model, fed_client):
        response = uuid_client(fed_client).post(f"/api/v1/models/{signed_model.pk}/register_client/")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert not signed_model.clients.filter(uuid=fed_client.uuid).exists()

    def test_a_registered_client_registers_again_only_by_signing(self, signer, signed_model):
        thief = APIClient()
        thief.credentials(HTTP_CLIENT_UUID=signer.uuid)
        response = thief.post(f"/api/v1/models/{signed_model.pk}/register_client/")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": SIGNATURE_REQUIRED}
        again = signer.call("POST", f"/api/v1/models/{signed_model.pk}/register_client/")
        assert (again.status_code, again.json()) == (status.HTTP_200_OK, {"uuid": signer.uuid})


class TestSignedRequests:
    def test_a_signed_client_reads_and_pushes(self, signer, signed_model):
        response = signer.call("GET", latest(signed_model))
        assert response.status_code == status.HTTP_200_OK
        assert response.json() == {"values": WEIGHTS, "aggregate": None}
        pushed = signer.call("POST", "/api/v1/model_updates/", {"federated_model": signed_model.pk, "data": WEIGHTS})
        assert pushed.status_code == status.HTTP_201_CREATED, pushed.json()
        listed = signer.call("GET", f"/api/v1/model_updates/?federated_model={signed_model.pk}&status=0")
        assert [item["id"] for item in listed.json()] == [pushed.json()["id"]]

    def test_a_stolen_uuid_opens_nothing(self, signer, signed_model):
        make_aggregate(signed_model, WEIGHTS)
        thief = APIClient()
        thief.credentials(HTTP_CLIENT_UUID=signer.uuid)
        response = thief.get(latest(signed_model))
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {
            "detail": "This model takes signed requests only: sign it with the client's key (FMA-Signature)."
        }
        assert thief.get("/api/v1/model_aggregates/").json() == []
        assert thief.get("/api/v1/models/").status_code == status.HTTP_403_FORBIDDEN
        pushed = thief.post(
            "/api/v1/model_updates/", {"federated_model": signed_model.pk, "data": WEIGHTS}, format="json"
        )
        assert pushed.status_code == status.HTTP_400_BAD_REQUEST
        assert not ModelUpdate.objects.exists()

    def test_another_key_is_refused(self, signer, signed_model):
        impostor = SignedClient(Ed25519PrivateKey.generate(), signer.uuid)
        response = impostor.call("GET", latest(signed_model))
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "Invalid signature."}

    def test_a_replay_is_refused(self, signer, signed_model):
        nonce = "replayed-nonce-0123456789"
        assert signer.call("GET", latest(signed_model), nonce=nonce).status_code == status.HTTP_200_OK
        again = signer.call("GET", latest(signed_model), nonce=nonce)
        assert again.status_code == status.HTTP_401_UNAUTHORIZED
        assert again.json() == {"detail": "Replayed request: this FMA-Nonce was already used."}

    def test_nonces_are_kept_where_every_container_sees_them(self):
        # A per-process cache would let a replay through another Lambda container.
        assert isinstance(caches["default"], DatabaseCache)

    @pytest.mark.parametrize("skew", [-signatures.MAX_SKEW_SECONDS - 5, signatures.MAX_SKEW_SECONDS + 5])
    def test_clock_skew_is_refused(self, signer, signed_model, skew):
        response = signer.call("GET", latest(signed_model), timestamp=int(time.time()) + skew)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json()["detail"].startswith("FMA-Timestamp must be the time of the request")

    def test_a_small_skew_is_accepted(self, signer, signed_model):
        response = signer.call("GET", latest(signed_model), timestamp=int(time.time()) - 60)
        assert response.status_code == status.HTTP_200_OK

    def test_a_tampered_body_is_refused(self, signer, signed_model):
        raw = json.dumps({"federated_model": signed_model.pk, "data": WEIGHTS}).encode()
        headers = signatures.sign_request(signer.key, method="POST", path="/api/v1/model_updates/", body=raw)
        extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        tampered = json.dumps({"federated_model": signed_model.pk, "data": [[9.0, 9.0], [9.0]]})
        response = signer.api.generic(
            "POST",
            "/api/v1/model_updates/",
            tampered,
            content_type="application/json",
            HTTP_CLIENT_UUID=signer.uuid,
            **extra,
        )
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert not ModelUpdate.objects.exists()

    def test_a_changed_query_is_refused(self, signer, signed_model):
        headers = signatures.sign_request(signer.key, method="GET", path="/api/v1/model_updates/", query="status=0")
        extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        response = signer.api.get("/api/v1/model_updates/?status=2", HTTP_CLIENT_UUID=signer.uuid, **extra)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED

    def test_an_incomplete_signature_is_refused(self, signer, signed_model):
        response = signer.api.get(latest(signed_model), HTTP_CLIENT_UUID=signer.uuid, HTTP_FMA_NONCE="a" * 20)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "A signed request needs all of FMA-Timestamp, FMA-Nonce, FMA-Signature."}

    def test_a_uuid_client_signing_without_a_key_is_refused(self, fed_client, model):
        response = SignedClient(Ed25519PrivateKey.generate(), str(fed_client.uuid)).call("GET", latest(model))
        assert response.status_code == status.HTTP_401_UNAUTHORIZED


class TestDevelopers:
    def test_a_signed_models_clients_are_listed_by_public_id(self, developer_api, signer, signed_model):
        body = developer_api.get(f"/api/v1/models/{signed_model.pk}/").json()
        assert body["clients"] == [client_public_id(signer.uuid)]
        assert signer.uuid not in json.dumps(body)

    def test_a_uuid_models_clients_stay_uuids(self, developer_api, model, fed_client):
        assert developer_api.get(f"/api/v1/models/{model.pk}/").json()["clients"] == [str(fed_client.uuid)]

    def test_the_developer_adds_a_keyed_client(self, developer_api, signed_model):
        key = Ed25519PrivateKey.generate()
        response = developer_api.post(
            f"/api/v1/models/{signed_model.pk}/add_client/",
            {"public_key": signatures.public_key_text(key)},
            format="json",
        )
        assert response.status_code == status.HTTP_201_CREATED
        added = SignedClient(key, response.json()["uuid"])
        assert added.call("GET", latest(signed_model)).status_code == status.HTTP_200_OK

    def test_a_client_added_to_a_signed_model_needs_a_key(self, developer_api, signed_model):
        response = developer_api.post(f"/api/v1/models/{signed_model.pk}/add_client/")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"public_key": "This model takes signed requests only: give the client's public_key."}
        assert not signed_model.clients.exists()
