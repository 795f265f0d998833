"""Signed client requests (RFC 9421, ``client_auth: "signed"``): keys proven and unique, stolen uuids, replays,
clock skew, tampering, malformed headers."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rest_framework import status
from rest_framework.test import APIClient

from fma_client import signing
from fma_core import signatures
from fma_django_connectors import services
from fma_django_connectors.access import nonces
from fma_django_connectors.access.authentication import CLIENT_KEY_ID, KEY_UNPROVEN, REGISTRATION_KEY_ID
from fma_django_connectors.access.permissions import SIGNATURE_REQUIRED
from fma_django_connectors.client_ids import client_public_id
from fma_django_connectors.exceptions import KeyTakenError
from fma_django_connectors.models import Client, ModelUpdate, SignatureNonce

from .conftest import SIGNED_MODEL_WEIGHTS, SignedClient, make_aggregate, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

WEIGHTS = SIGNED_MODEL_WEIGHTS


def latest(model):
    return f"/api/v1/models/{model.pk}/get_latest_model/"


def register(model):
    return f"/api/v1/models/{model.pk}/register_client/"


def _raw(key) -> bytes:
    return base64.b64decode(signing.public_key_text(key))


class TestRegistration:
    def test_the_server_stores_only_the_public_key(self, signer):
        stored = Client.objects.get(uuid=signer.uuid)
        assert bytes(stored.public_key) == _raw(signer.key)

    @pytest.mark.parametrize("model_fixture", ["signed_model", "model"])
    def test_a_key_is_registered_only_by_a_request_it_signed(self, anonymous_api, request, model_fixture):
        model = request.getfixturevalue(model_fixture)
        key = Ed25519PrivateKey.generate()
        unsigned = anonymous_api.post(register(model), {"public_key": signing.public_key_text(key)}, format="json")
        assert unsigned.status_code == status.HTTP_401_UNAUTHORIZED
        assert unsigned.json() == {"detail": KEY_UNPROVEN}
        # Signed, but by another key than the one it registers.
        other = SignedClient(Ed25519PrivateKey.generate())
        lent = other.call("POST", register(model), {"public_key": signing.public_key_text(key)})
        assert lent.status_code == status.HTTP_401_UNAUTHORIZED
        assert lent.json() == {"detail": KEY_UNPROVEN}
        assert not Client.objects.exists()

    def test_a_registration_signed_with_a_keyid_that_is_no_key_is_refused(self, signed_model):
        holder = SignedClient(Ed25519PrivateKey.generate())
        raw = json.dumps({"public_key": signing.public_key_text(holder.key)}).encode()
        headers = holder.headers("POST", register(signed_model), raw, key_id="not-a-key")
        response = holder.send("POST", register(signed_model), raw, headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.wrong_key_id(REGISTRATION_KEY_ID)}

    def test_a_captured_registration_cannot_be_replayed(self, signed_model):
        holder = SignedClient(Ed25519PrivateKey.generate())
        raw = json.dumps({"public_key": signing.public_key_text(holder.key)}).encode()
        captured = holder.headers("POST", register(signed_model), raw)
        assert holder.send("POST", register(signed_model), raw, captured).status_code == status.HTTP_200_OK
        again = holder.send("POST", register(signed_model), raw, captured)
        assert again.status_code == status.HTTP_401_UNAUTHORIZED
        assert Client.objects.count() == 1

    def test_a_key_names_one_client(self, signer, signed_model, developer_api):
        again = signer.call("POST", register(signed_model), {"public_key": signing.public_key_text(signer.key)})
        # With its uuid the client keeps its key; without, the key is another client's already.
        assert again.status_code == status.HTTP_400_BAD_REQUEST
        fresh = SignedClient(signer.key)
        second = fresh.call("POST", register(signed_model), {"public_key": signing.public_key_text(signer.key)})
        assert second.status_code == status.HTTP_409_CONFLICT
        assert second.json() == {"public_key": services.KEY_TAKEN}
        added = developer_api.post(
            f"/api/v1/models/{signed_model.pk}/add_client/",
            {"public_key": signing.public_key_text(signer.key)},
            format="json",
        )
        assert (added.status_code, added.json()) == (status.HTTP_409_CONFLICT, {"public_key": services.KEY_TAKEN})
        assert Client.objects.count() == 1

    def test_the_database_holds_a_key_once(self, signer):
        # The last word when two registrations of one key race: the unique column.
        with pytest.raises(KeyTakenError):
            services.client_create(public_key=_raw(signer.key))

    def test_a_new_client_without_a_key_is_400(self, anonymous_api, signed_model):
        response = anonymous_api.post(register(signed_model))
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


def _update(model) -> bytes:
    return json.dumps({"federated_model": model.pk, "data": WEIGHTS}).encode()


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
        assert response.json() == {"detail": SIGNATURE_REQUIRED}
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
        assert again.json() == {"detail": "Replayed request: this nonce was already used with this key."}

    def test_a_captured_update_replayed_as_another_client_is_refused(self, signer, signed_model, anonymous_api):
        """The victim's captured update, its key registered by a thief and the update replayed as the thief."""
        raw = _update(signed_model)
        captured = signer.headers("POST", "/api/v1/model_updates/", raw)
        assert signer.send("POST", "/api/v1/model_updates/", raw, captured).status_code == status.HTTP_201_CREATED

        stolen_key = anonymous_api.post(
            f"/api/v1/models/{signed_model.pk}/register_client/",
            {"public_key": signing.public_key_text(signer.key)},
            format="json",
        )
        assert stolen_key.status_code == status.HTTP_401_UNAUTHORIZED
        assert stolen_key.json() == {"detail": KEY_UNPROVEN}
        # Even a client the thief has (registered with a key of its own) cannot wear the captured signature.
        thief = SignedClient(Ed25519PrivateKey.generate())
        thief.uuid = thief.call(
            "POST",
            f"/api/v1/models/{signed_model.pk}/register_client/",
            {"public_key": signing.public_key_text(thief.key)},
        ).json()["uuid"]
        replayed = signer.send("POST", "/api/v1/model_updates/", raw, {**captured, "CLIENT-UUID": thief.uuid})
        assert replayed.status_code == status.HTTP_401_UNAUTHORIZED
        assert ModelUpdate.objects.count() == 1

    def test_nonces_outlive_any_amount_of_others_traffic(self, signer, signed_model):
        """Nonces are rows under a unique constraint, not cache entries that others' traffic can cull."""
        nonce = "victim-nonce-0123456789"
        assert signer.call("GET", latest(signed_model), nonce=nonce).status_code == status.HTTP_200_OK
        other = SignedClient(Ed25519PrivateKey.generate())
        other.uuid = str(services.client_register(model=signed_model, public_key=_raw(other.key)).uuid)
        for index in range(150):
            assert other.call("GET", latest(signed_model), nonce=f"other-nonce-{index:020d}").status_code == 200
        assert signer.call("GET", latest(signed_model), nonce=nonce).status_code == status.HTTP_401_UNAUTHORIZED
        assert SignatureNonce.objects.filter(key=signing.public_key_text(other.key)).count() == 150

    def test_expired_nonces_are_deleted(self, signer, signed_model, monkeypatch):
        stale = SignatureNonce.objects.create(key="k" * 44, nonce="n" * 16, expires_at=int(time.time()) - 3600)
        monkeypatch.setattr(nonces.sweep, "last", 0.0)
        assert signer.call("GET", latest(signed_model)).status_code == status.HTTP_200_OK
        assert not SignatureNonce.objects.filter(pk=stale.pk).exists()
        # The signer's own (its registration's and this request's) are kept: they could still be on time.
        assert SignatureNonce.objects.filter(key=signing.public_key_text(signer.key)).count() == 2

    @pytest.mark.parametrize("skew", [-signatures.MAX_SKEW_SECONDS - 5, signatures.MAX_SKEW_SECONDS + 5])
    def test_clock_skew_is_refused(self, signer, signed_model, skew):
        response = signer.call("GET", latest(signed_model), created=int(time.time()) + skew)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.STALE}

    def test_a_small_skew_is_accepted(self, signer, signed_model):
        response = signer.call("GET", latest(signed_model), created=int(time.time()) - 60)
        assert response.status_code == status.HTTP_200_OK

    def test_a_tampered_body_is_refused(self, signer, signed_model):
        headers = signer.headers("POST", "/api/v1/model_updates/", _update(signed_model))
        tampered = json.dumps({"federated_model": signed_model.pk, "data": [[9.0, 9.0], [9.0]]}).encode()
        response = signer.send("POST", "/api/v1/model_updates/", tampered, headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.DIGEST_INVALID}
        assert not ModelUpdate.objects.exists()

    def test_a_body_without_a_digest_is_refused(self, signer, signed_model):
        headers = signer.headers("POST", "/api/v1/model_updates/")  # signed as if bodiless
        response = signer.send("POST", "/api/v1/model_updates/", _update(signed_model), headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.uncovered([*signatures.CLIENT_COMPONENTS, "content-digest"])}

    def test_a_changed_query_is_refused(self, signer, signed_model):
        headers = signer.headers("GET", "/api/v1/model_updates/?status=0")
        response = signer.send("GET", "/api/v1/model_updates/?status=2", b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "Invalid signature."}

    def test_repeated_query_parameters_reordered_after_signing_are_refused(self, signer, signed_model):
        # Django reads the last of repeated parameters: a reordering would change what the request asks.
        headers = signer.headers("GET", "/api/v1/model_updates/?status=0&status=2")
        response = signer.send("GET", "/api/v1/model_updates/?status=2&status=0", b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        same = signer.send(
            "GET",
            "/api/v1/model_updates/?status=0&status=2",
            b"",
            signer.headers("GET", "/api/v1/model_updates/?status=0&status=2"),
        )
        assert same.status_code == status.HTTP_200_OK

    def test_a_signature_for_another_host_is_refused(self, signer, signed_model):
        headers = {"CLIENT-UUID": signer.uuid}
        signing.sign(
            signer.key,
            method="GET",
            url=f"http://elsewhere.example{latest(signed_model)}",
            headers=headers,
            body=b"",
            key_id=signer.uuid,
        )
        response = signer.send("GET", latest(signed_model), b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED

    def test_a_keyid_other_than_the_uuid_is_refused(self, signer, signed_model):
        headers = signer.headers("GET", latest(signed_model), key_id=signing.public_key_text(signer.key))
        response = signer.send("GET", latest(signed_model), b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.wrong_key_id(CLIENT_KEY_ID)}

    def test_a_signature_that_leaves_out_the_client_uuid_is_refused(self, signer, signed_model):
        # Signed before the header was added: the signature would fit any client.
        headers = signer.headers("GET", latest(signed_model), uuid="", key_id=signer.uuid)
        response = signer.send("GET", latest(signed_model), b"", {**headers, "CLIENT-UUID": signer.uuid})
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.uncovered(signatures.CLIENT_COMPONENTS)}

    def test_an_incomplete_signature_is_refused(self, signer, signed_model):
        headers = signer.headers("GET", latest(signed_model))
        del headers["Signature"]
        response = signer.send("GET", latest(signed_model), b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": signatures.INCOMPLETE}

    @pytest.mark.parametrize(
        ("header", "value"),
        [
            ("Signature-Input", 'fma=("@method");created=²;keyid="x";nonce="y"'),
            ("Signature-Input", 'fma=("@method" "@target-uri" "client-uuid");created=' + "9" * 5000),
            ("Signature-Input", "fma=(" + '"@method" ' * 2000 + ")"),
            ("Signature-Input", "ä"),
            ("Signature-Input", 'fma=("@method");created=1;keyid="x";nonce="y", other=();created=1'),
            ("Signature-Input", 'fma="@method";created=1;keyid="x";nonce="y"'),
            ("Signature-Input", 'fma=("@method" "@target-uri" "client-uuid");created=1.5;keyid="x";nonce="y"'),
            ("Signature", "fma=:not base64!:"),
            ("Signature", 'fma="text"'),
            ("Signature", "other=:AAAA:"),
            ("Signature", ""),
            ("Content-Digest", "sha-256=:AAAA:"),
            ("Content-Digest", "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"),
            ("Content-Digest", "sha-256=" + "9" * 5000),
        ],
    )
    def test_a_malformed_signature_header_is_a_401_never_a_500(self, signer, signed_model, header, value):
        headers = {**signer.headers("POST", "/api/v1/model_updates/", _update(signed_model)), header: value}
        signer.api.raise_request_exception = False
        response = signer.send("POST", "/api/v1/model_updates/", _update(signed_model), headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert set(response.json()) == {"detail"}
        assert not ModelUpdate.objects.exists()

    @pytest.mark.parametrize("nonce", ["short", "x" * 129, "with space 0123456789", 'quote"0123456789abc'])
    def test_a_malformed_nonce_is_refused(self, signer, signed_model, nonce):
        headers = signer.headers("GET", latest(signed_model))
        headers["Signature-Input"] = headers["Signature-Input"].replace(
            headers["Signature-Input"].split('nonce="')[1].split('"')[0], nonce.replace('"', '\\"')
        )
        response = signer.send("GET", latest(signed_model), b"", headers)
        assert response.status_code == status.HTTP_401_UNAUTHORIZED

    def test_a_uuid_client_signing_without_a_key_is_refused(self, fed_client, model):
        response = SignedClient(Ed25519PrivateKey.generate(), str(fed_client.uuid)).call("GET", latest(model))
        assert response.status_code == status.HTTP_401_UNAUTHORIZED
        assert response.json() == {"detail": "Invalid signature."}


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
            {"public_key": signing.public_key_text(key)},
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
