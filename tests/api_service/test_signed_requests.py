"""Signed client requests (RFC 9421) through the Lambda entry, as API Gateway delivers them.

The REST API's events (payload 1.0) carry the stage in ``requestContext.path`` only, HTTP API's (2.0) the raw
query: the target URI signed is the one the function sees, without the stage. On PostgreSQL, one captured
request sent by many handlers at once (many Lambda containers, each its own connection) is taken once.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rest_framework import status

import service_initialization
from fma_client import signing
from fma_core.serialization import parse_weights
from fma_django_connectors import services
from fma_django_connectors.models import ModelUpdate, SignatureNonce
from tests.events import make_context, make_v1_event, make_v2_event, response_body
from tests.parallel import all_at_once

pytestmark = pytest.mark.django_db(transaction=True)

WEIGHTS = [[1.0, 2.0], [3.0]]


@pytest.fixture
def signed(django_user_model):
    """A ``signed`` model and a client of it with its key: ``(model, key, uuid)``."""
    developer = django_user_model.objects.create_user("dev", password="signed-requests")
    model = services.model_create(
        developer=developer,
        name="signed",
        aggregator="avg_values_if_data",
        client_auth="signed",
        initial_model=parse_weights(WEIGHTS),
    )
    key = Ed25519PrivateKey.generate()
    client = services.client_register(model=model, public_key=base64.b64decode(signing.public_key_text(key)))
    return model, key, str(client.uuid)


def _signed_event(build, key, uuid, method, path, *, query=None, body=b"", signed_url=None):
    """An event of a request signed as the client sends it: ``https://testserver``, the query as encoded."""
    encoded = urlencode(query or {}, quote_via=quote)
    url = signed_url or f"https://testserver{path}" + (f"?{encoded}" if encoded else "")
    headers = {"CLIENT-UUID": uuid, "Content-Type": "application/json"}
    signing.sign(key, method=method, url=url, headers=headers, body=body, key_id=uuid)
    return build(method=method, path=path, headers=headers, query=query, body=body or None)


def _handle(event):
    response = service_initialization.handler(event, make_context())
    return response["statusCode"], json.loads(response_body(response))


@pytest.mark.parametrize("build", [make_v1_event, make_v2_event])
def test_a_signed_read_with_a_query_passes(signed, build):
    model, key, uuid = signed
    query = {"federated_model": str(model.pk), "status": "0"}

    answer = _handle(_signed_event(build, key, uuid, "GET", "/api/v1/model_updates/", query=query))

    assert answer == (status.HTTP_200_OK, [])


@pytest.mark.parametrize("build", [make_v1_event, make_v2_event])
def test_a_signed_update_passes(signed, build):
    model, key, uuid = signed
    body = json.dumps({"federated_model": model.pk, "data": WEIGHTS}).encode()

    code, answer = _handle(_signed_event(build, key, uuid, "POST", "/api/v1/model_updates/", body=body))

    assert code == status.HTTP_201_CREATED, answer
    assert answer["client"] == uuid


def test_the_stage_is_not_part_of_what_is_signed(signed):
    model, key, uuid = signed
    path = f"/api/v1/models/{model.pk}/get_latest_model/"
    with_stage = f"https://testserver/prod{path}"

    code, answer = _handle(_signed_event(make_v1_event, key, uuid, "GET", path, signed_url=with_stage))

    assert (code, answer) == (status.HTTP_401_UNAUTHORIZED, {"detail": "Invalid signature."})


# The SQLite test database lives in memory, where concurrent writers fail at once instead of waiting.
@pytest.mark.requires_postgres
def test_one_signed_update_sent_by_many_handlers_at_once_is_taken_once(signed):
    model, key, uuid = signed
    body = json.dumps({"federated_model": model.pk, "data": WEIGHTS}).encode()
    event = _signed_event(make_v2_event, key, uuid, "POST", "/api/v1/model_updates/", body=body)

    statuses = all_at_once([json.loads(json.dumps(event)) for _ in range(8)])

    assert sorted(statuses) == [status.HTTP_201_CREATED] + [status.HTTP_401_UNAUTHORIZED] * 7
    assert ModelUpdate.objects.count() == 1
    assert SignatureNonce.objects.filter(key=signing.public_key_text(key)).count() == 1
