"""A Hypothesis fuzzer over every route, through the Lambda entry: no input makes the service answer 5xx.

Callers: nobody, developers (Basic, token), a ``uuid`` client, a ``signed`` client (properly signed), and
made-up credentials; models of both ``client_auth`` kinds. Bodies are arbitrary JSON, JSON-shaped field
mixes, or arbitrary bytes. Every answer is a status below 500, with a JSON body (HEAD and the admin's HTML pages aside).

When the OpenAPI schema lands, schemathesis will fuzz from it as well; this fuzzer needs no schema.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

import service_initialization
from fma_client import signing
from fma_core.serialization import parse_weights
from fma_django_connectors import services
from tests.events import make_context, make_v1_event, make_v2_event, response_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_test_connection")]

PASSWORD = "fuzz-password"
ROUTES = [
    "/api/v1/models/",
    "/api/v1/models/{model}/",
    "/api/v1/models/{model}/register_client/",
    "/api/v1/models/{model}/add_client/",
    "/api/v1/models/{model}/get_latest_aggregate/",
    "/api/v1/models/{model}/get_current_artifact/",
    "/api/v1/models/{model}/get_latest_model/",
    "/api/v1/model_updates/",
    "/api/v1/model_updates/{id}/",
    "/api/v1/model_aggregates/",
    "/api/v1/model_aggregates/{id}/",
    "/api/v1/model_aggregates/{id}/publish_aggregate/",
    "/api/v1/client_aggregate_scores/",
    "/api/v1/client_aggregate_scores/{id}/",
    "/api/v1/enrollment_tokens/",
    "/api/v1/enrollment_tokens/{id}/",
    "/api-token-auth/",
    "/admin/login/",
    "/",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]
FIELDS = [
    "name",
    "aggregator",
    "federated_model",
    "data",
    "base_aggregate",
    "aggregate",
    "validation_results",
    "client",
    "clients",
    "version",
    "uses",
    "expires_at",
    "registration",
    "client_auth",
    "public_key",
    "enrollment_token",
    "username",
    "password",
    "initial_model",
    "update_schema",
    "num_examples",
    "status",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ids = st.one_of(st.sampled_from(["1", "2", "3", "0", "-1", "abc", "999999999999", "%00"]), st.integers(0, 5).map(str))
bodies = st.one_of(
    st.none(),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(FIELDS), json_values | ids, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
# Signature headers as an attacker may write them: known-bad shapes and arbitrary Latin-1 text.
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
junk_signatures = st.dictionaries(
    st.sampled_from(["Signature", "Signature-Input", "Content-Digest"]),
    st.sampled_from(
        [
            "fma=:AAAA:",
            'fma=("@method");created=' + "9" * 5000,
            'fma=("@method" "@target-uri" "client-uuid");created=1;keyid="x";nonce="y"',
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
            "²",
        ]
    )
    | header_text,
    min_size=1,
    max_size=3,
)
queries = st.dictionaries(
    st.sampled_from(["federated_model", "status", "ordering", "page", "page_size", "aggregate", "client", "x"]),
    ids | st.text(max_size=6),
    max_size=3,
)


@pytest.fixture
def world(django_user_model, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]),
    }
    developer = django_user_model.objects.create_user("dev", password=PASSWORD)
    staff = django_user_model.objects.create_user("root", password=PASSWORD, is_staff=True)
    weights = parse_weights([[1.0, 2.0], [3.0]])
    uuid_model = services.model_create(
        developer=developer, name="u", aggregator="avg_values_if_data", initial_model=weights
    )
    signed_model = services.model_create(
        developer=developer, name="s", aggregator="avg_values_if_data", client_auth="signed", registration="invite"
    )
    key = Ed25519PrivateKey.generate()
    signer = services.client_register(model=signed_model, public_key=base64.b64decode(signing.public_key_text(key)))
    plain = services.client_register(model=uuid_model)
    services.update_create(model=uuid_model, client=plain, weights=weights)
    return {
        "models": [uuid_model.pk, signed_model.pk],
        "token": Token.objects.create(user=staff).key,
        "key": key,
        "signer": str(signer.uuid),
        "plain": str(plain.uuid),
    }


def _credentials(world, kind, method, path, query, body, junk):
    basic = base64.b64encode(f"dev:{PASSWORD}".encode()).decode()
    if kind == "basic":
        return {"Authorization": f"Basic {basic}"}
    if kind == "token":
        return {"Authorization": f"Token {world['token']}"}
    if kind == "uuid":
        return {"CLIENT-UUID": world["plain"]}
    if kind in ("signed", "bad signature"):
        # Signed as the events below carry the request: https://testserver, the query encoded with quote.
        headers = {"CLIENT-UUID": world["signer"]}
        encoded = urlencode(query, quote_via=quote)
        url = f"https://testserver{signing.canonical_path(path)}" + (f"?{encoded}" if encoded else "")
        signing.sign(world["key"], method=method, url=url, headers=headers, body=body or b"", key_id=world["signer"])
        return headers if kind == "signed" else {**headers, **junk}
    if kind == "junk":
        return {"CLIENT-UUID": str(uuid.uuid4()), "Authorization": "Basic !!!", **junk}
    return {}


def _is_utf8(body: bytes | None) -> bool:
    try:
        (body or b"").decode()
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    model_choice=st.sampled_from([0, 1]),
    other_id=ids,
    method=st.sampled_from(METHODS),
    query=queries,
    body=bodies,
    caller=st.sampled_from(["none", "basic", "token", "uuid", "signed", "bad signature", "junk"]),
    junk=junk_signatures,
    build=st.sampled_from([make_v1_event, make_v2_event]),
)
def test_no_request_is_a_server_error(world, route, model_choice, other_id, method, query, body, caller, junk, build):
    path = route.format(model=world["models"][model_choice], id=other_id)
    headers = {"Content-Type": "application/json", **_credentials(world, caller, method, path, query, body, junk)}
    event = build(method=method, path=path, headers=headers, query=query, body=body, binary=not _is_utf8(body))
    response = service_initialization.handler(event, make_context())
    assert response["statusCode"] < 500, (method, path, query, body, caller, response_body(response)[:300])
    # HEAD, a 204 (a deletion) and the admin's HTML pages aside, every answer is JSON.
    if method != "HEAD" and response["statusCode"] != 204 and not path.startswith("/admin/"):
        json.loads(response_body(response))
