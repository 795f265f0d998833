"""Schemathesis over the OpenAPI description, against the real local server: no 5xx, every answer as described.

The real ``api_service/local_server.py`` runs on a fresh data folder (its own SQLite database); the fixtures are
made through the API as a developer and clients would make them. The schema is loaded from the running
server's ``/api/schema/``, and every operation in it is fuzzed (schemathesis' examples, coverage and fuzzing
phases; valid and invalid inputs) by three callers:

- ``developer``: the admin's token (``Authorization: Token ...``);
- ``uuid client``: a client of a ``uuid`` model, by its ``CLIENT-UUID``;
- ``signed client``: a client of a ``signed`` model, each request signed with its Ed25519 key (RFC 9421;
  :class:`SignedRequest` signs the request as it goes on the wire, body bytes and query included).

Path ids are drawn from the ids of the objects made for the caller as well as from anywhere, so the
operations reach real rows, not only 404s. Each answer must pass: not a server error; a status code the
operation documents; a documented content type; a body matching the documented schema; documented headers.

Bounded and repeatable: a fixed seed, derandomized, ``MAX_EXAMPLES`` per operation in the fuzzing phase.
Run it alone: ``pytest tests/api_service/test_schemathesis.py`` (docs/api.md). The tests after the fuzz pin
down, one each, the failures it found.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fma_client import signing
from tests.servers import running_server

pytestmark = pytest.mark.integration

PASSWORD = "schemathesis-admin-password"
OPENAPI_JSON = "application/vnd.oai.openapi+json"
MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CONFIG = {
    # Repeatable in CI: the same cases every run.
    "seed": 20240611,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        # The callers' credentials are the fixtures' own; generated Basic passwords and session cookies would
        # only exhaust the login brake (429) and hide the caller under test.
        "with-security-parameters": False,
    },
    # Stateful runs (links between operations) are out of the time budget of the suite.
    "phases": {"stateful": {"enabled": False}},
}
WEIGHTS = [[1.0, 2.0], [3.0]]


class SignedRequest(requests.auth.AuthBase):
    """Signs a request as sent, with the SDK's signer (RFC 9421), its ``CLIENT-UUID`` covered.

    A ``requests`` auth runs on the prepared request, so it signs the exact body bytes and query that go on the
    wire; schemathesis' ``before_call`` hook would see the case before serialization, and is global to the process.
    """

    def __init__(self, client_uuid: str | None, key: Ed25519PrivateKey, service_url: str) -> None:
        self.client_uuid = client_uuid
        self.signer = signing.RequestSigner(key, service_url)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.client_uuid is not None:
            request.headers["CLIENT-UUID"] = self.client_uuid
        return self.signer(request)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(
        tmp_path_factory.mktemp("schemathesis"),
        admin_password=PASSWORD,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings_unthrottled_server"},
    ) as running:
        yield running


def _call(server, method, path, *, body=None, headers=None, expected=200, auth=None):
    response = requests.request(
        method,
        server.url + path.lstrip("/"),
        json=body,
        headers={"Accept": "application/json", **(headers or {})},
        auth=auth,
    )
    assert response.status_code == expected, (method, path, response.status_code, response.text)
    return response.json()


@pytest.fixture(scope="module")
def developer(server):
    token = _call(server, "POST", "/api-token-auth/", body={"username": "admin", "password": PASSWORD})["token"]
    return {"Authorization": f"Token {token}"}


def _model(server, developer, **fields):
    body = {"name": "fuzzed", "aggregator": "avg_values_if_data", "initial_model": WEIGHTS, **fields}
    return _call(server, "POST", "/api/v1/models/", body=body, headers=developer, expected=201)


def _make_world(server, developer):
    """A ``uuid`` model and a ``signed`` one (both with an artifact), a client of each, an update, a token."""
    uuid_model = _model(server, developer)
    signed_model = _model(server, developer, client_auth="signed")
    plain = _call(server, "POST", f"/api/v1/models/{uuid_model['id']}/register_client/")["uuid"]
    key = Ed25519PrivateKey.generate()
    signer = _call(
        server,
        "POST",
        f"/api/v1/models/{signed_model['id']}/register_client/",
        body={"public_key": signing.public_key_text(key)},
        # A new client's registration is signed by the key it registers.
        auth=SignedRequest(None, key, server.url),
    )["uuid"]
    update = _call(
        server,
        "POST",
        "/api/v1/model_updates/",
        body={"federated_model": uuid_model["id"], "data": WEIGHTS},
        headers={"CLIENT-UUID": plain},
        expected=201,
    )
    token = _call(
        server,
        "POST",
        "/api/v1/enrollment_tokens/",
        body={"federated_model": signed_model["id"]},
        headers=developer,
        expected=201,
    )
    return {
        "ids": {
            "models": [uuid_model["id"], signed_model["id"]],
            "model_updates": [update["id"]],
            "model_artifacts": [uuid_model["current_artifact"], signed_model["current_artifact"]],
            "enrollment_tokens": [token["id"]],
        },
        "uuid_model": uuid_model["id"],
        "signed_model": signed_model["id"],
        "update": update["id"],
        "credentials": {
            "developer": {"headers": developer},
            "uuid client": {"headers": {"CLIENT-UUID": plain}},
            "signed client": {"auth": SignedRequest(signer, key, server.url)},
        },
    }


@pytest.fixture(params=["developer", "uuid client", "signed client"])
def caller(request, server, developer):
    """The caller under test, with fresh objects of its own (earlier runs may have changed or deleted theirs)."""
    world = _make_world(server, developer)
    return {"ids": world["ids"], **world["credentials"][request.param]}


@pytest.fixture
def api_schema(server, caller):
    config = schemathesis.Config.from_dict(CONFIG)
    loaded = schemathesis.openapi.from_url(server.url + "api/schema/", config=config, headers={"Accept": OPENAPI_JSON})
    loaded.config.update(base_url=server.url.rstrip("/"))

    @loaded.hook
    def before_generate_path_parameters(context, strategy):
        # Ids of the caller's own objects, half the time: the rest reach whatever the generator makes.
        resource = context.operation.path.split("/")[3] if context.operation.path.startswith("/api/v1/") else ""
        known = caller["ids"].get(resource)
        if not known or context.operation.method.upper() == "DELETE":
            return strategy
        return st.one_of(strategy, st.fixed_dictionaries({"id": st.sampled_from(known)}))

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis 4.32's lazy schema renames the test node per operation through ``Node._nodeid``, an attribute
    # pytest 9.2 no longer has (it keeps ``_id``); without it the test fails before sending a request.
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_answer_is_described_and_none_is_a_server_error(case, caller):
    case.call_and_validate(checks=CHECKS, headers=caller.get("headers"), auth=caller.get("auth"))


# --- The failures the fuzz found, one by one ------------------------------------------------------------


@pytest.fixture(scope="module")
def world(server, developer):
    return _make_world(server, developer)


@pytest.fixture(scope="module")
def described(server):
    """The schema the server serves, to check single answers against."""
    return schemathesis.openapi.from_url(server.url + "api/schema/", headers={"Accept": OPENAPI_JSON})


def _get(server, path, credentials):
    return requests.get(server.url + path.lstrip("/"), headers=credentials.get("headers"), auth=credentials.get("auth"))


def assert_described(described, method, template, response):
    """``response`` has a status code ``template`` documents, and a body matching what it documents for it."""
    operation = described[template][method]
    assert str(response.status_code) in operation.definition.raw["responses"], (response.status_code, response.text)
    operation.validate_response(response)


def test_the_signed_client_signs_its_fuzzed_requests_rightly(server, world):
    """The signed client's fuzz means something only if its signatures pass: a signed read of its model."""
    response = _get(
        server, f"/api/v1/models/{world['signed_model']}/get_latest_model/", world["credentials"]["signed client"]
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"values": WEIGHTS, "aggregate": None}


def test_a_page_past_the_last_is_a_described_404(server, world, described):
    response = _get(server, "/api/v1/models/?page=999", world["credentials"]["developer"])

    assert response.status_code == 404
    assert_described(described, "GET", "/api/v1/models/", response)


def test_a_signed_models_clients_are_described_as_public_ids(server, world, described):
    response = _get(server, f"/api/v1/models/{world['signed_model']}/", world["credentials"]["developer"])

    assert response.json()["clients"][0].startswith("client:")
    assert_described(described, "GET", "/api/v1/models/{id}/", response)


@pytest.mark.parametrize(
    ("route", "query", "expected"),
    [
        ("get_latest_model", "?format=json", WEIGHTS),
        ("get_current_artifact", "?format=json", WEIGHTS),
        ("get_latest_aggregate", "", {}),
    ],
)
def test_the_weights_routes_json_answers_are_described(server, world, described, route, query, expected):
    response = _get(server, f"/api/v1/models/{world['uuid_model']}/{route}/{query}", world["credentials"]["developer"])

    assert response.json() == expected
    assert_described(described, "GET", f"/api/v1/models/{{id}}/{route}/", response)


def test_a_clients_own_update_is_described(server, world, described):
    response = _get(server, f"/api/v1/model_updates/{world['update']}/", world["credentials"]["uuid client"])

    assert "applied_aggregate" not in response.json()
    assert_described(described, "GET", "/api/v1/model_updates/{id}/", response)


def test_an_unsigned_registration_to_a_signed_model_is_a_described_401(server, world, described):
    uuid_client = world["credentials"]["uuid client"]["headers"]
    response = requests.post(f"{server.url}api/v1/models/{world['signed_model']}/register_client/", headers=uuid_client)

    assert response.status_code == 401
    assert_described(described, "POST", "/api/v1/models/{id}/register_client/", response)


def test_a_signed_request_to_a_percent_encoded_path_passes_its_signature(server, world):
    """The SDK sends ``%2C`` as ``,`` and signs that, the path the service rebuilds from the one it reads."""
    response = _get(server, "/api/v1/models/1%2C2/get_latest_model/", world["credentials"]["signed client"])

    assert response.status_code == 404, response.text
