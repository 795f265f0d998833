"""Fixtures of the API tests: users, clients, models with real weights files, and authenticated API clients."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from fma_client import signing
from fma_core.serialization import Weights, parse_weights
from fma_django_connectors import services
from fma_django_connectors.models import Client, FederatedModel, ModelAggregate
from fma_django_connectors.storage.weights_storage import structure_columns, weights_save

PASSWORD = "correct horse battery staple"

NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "No FederatedModel matches the given query."}


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Weights files of each test in a folder of their own, so a test can list what was written.

    The API test modules use it for every test (``pytestmark``).
    """
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def developer(db):
    return _user("ada")


@pytest.fixture
def other_developer(db):
    return _user("grace")


@pytest.fixture
def staff(db):
    return _user("root", is_staff=True)


def basic_client(user) -> APIClient:
    api = APIClient()
    credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return api


def uuid_client(client: Client) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_CLIENT_UUID=str(client.uuid))
    return api


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture
def developer_api(developer) -> APIClient:
    return basic_client(developer)


@pytest.fixture
def other_developer_api(other_developer) -> APIClient:
    return basic_client(other_developer)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return basic_client(staff)


@pytest.fixture
def token(developer) -> str:
    return Token.objects.create(user=developer).key


def make_model(developer, **fields) -> FederatedModel:
    fields.setdefault("name", "mnist")
    fields.setdefault("aggregator", "avg_values_if_data")
    initial = fields.pop("initial_model", None)
    return services.model_create(
        developer=developer, initial_model=parse_weights(initial) if initial is not None else None, **fields
    )


def make_aggregate(model: FederatedModel, weights, *, parent=None, validation_score=None) -> ModelAggregate:
    """An aggregate as the aggregation workflow records it (a weights file and a row with its structure).

    A model gets its structure from its first weights; one that has none yet takes the aggregate's, as if the
    updates it was made of had been sent.
    """
    aggregate = ModelAggregate(federated_model=model, parent=parent, validation_score=validation_score)
    weights = weights if isinstance(weights, Weights) else parse_weights(weights)
    structure = weights_save(field=aggregate.result, weights=weights)
    for column, value in structure_columns(structure).items():
        setattr(aggregate, column, value)
    aggregate.save()
    if model.structure is None:
        model.structure = structure.to_json()
        FederatedModel.objects.filter(pk=model.pk).update(structure=model.structure)
    return aggregate


@pytest.fixture
def model(developer) -> FederatedModel:
    return make_model(developer)


@pytest.fixture
def other_model(other_developer) -> FederatedModel:
    return make_model(other_developer, name="other")


@pytest.fixture
def fed_client(model) -> Client:
    """A client registered to ``model``."""
    return services.client_register(model=model)


@pytest.fixture
def fed_client_api(fed_client) -> APIClient:
    return uuid_client(fed_client)


SIGNED_MODEL_WEIGHTS = [[1.0, 2.0], [3.0]]


def as_meta(headers) -> dict[str, str]:
    """Request headers as the Django test client takes them (``HTTP_CLIENT_UUID``, ...)."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


class SignedClient:
    """A federated client that signs its requests (RFC 9421) with ``fma_client.signing``, as the SDK does."""

    def __init__(self, key: Ed25519PrivateKey, uuid: str | None = None):
        self.key = key
        self.uuid = uuid
        self.api = APIClient()

    def headers(self, method, url, raw=b"", *, created=None, nonce=None, key_id=None, uuid=None) -> dict[str, str]:
        """The signature headers (and ``CLIENT-UUID``) of a request to ``url`` on the test server."""
        uuid = self.uuid if uuid is None else uuid
        headers = {"CLIENT-UUID": uuid} if uuid else {}
        key_id = key_id or uuid or signing.public_key_text(self.key)
        signing.sign(
            self.key,
            method=method,
            url=f"http://testserver{url}",
            headers=headers,
            body=raw,
            key_id=key_id,
            created=created,
            nonce=nonce,
        )
        return headers

    def call(self, method, url, body=None, *, created=None, nonce=None, headers=None):
        raw = b"" if body is None else json.dumps(body).encode()
        signed = self.headers(method, url, raw, created=created, nonce=nonce)
        return self.send(method, url, raw, {**signed, **(headers or {})})

    def send(self, method, url, raw, headers):
        """Send ``raw`` with exactly ``headers`` (captured or tampered signature headers)."""
        return self.api.generic(method, url, raw, content_type="application/json", **as_meta(headers))


@pytest.fixture
def signed_model(developer) -> FederatedModel:
    """A model whose clients sign their requests (``client_auth: "signed"``), with initial weights."""
    return make_model(developer, name="signed", client_auth="signed", initial_model=SIGNED_MODEL_WEIGHTS)


@pytest.fixture
def signer(signed_model) -> SignedClient:
    """A client registered to ``signed_model`` with its Ed25519 key, through the API."""
    key = Ed25519PrivateKey.generate()
    client = SignedClient(key)
    response = client.call(
        "POST",
        f"/api/v1/models/{signed_model.pk}/register_client/",
        {"public_key": signing.public_key_text(key)},
    )
    assert response.status_code == 200, response.json()
    client.uuid = response.json()["uuid"]
    return client
