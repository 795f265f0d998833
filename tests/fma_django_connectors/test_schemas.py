"""Models' JSON Schemas: checking a client's document fetches nothing and runs in time linear in its length."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from referencing.exceptions import Unresolvable
from rest_framework import status

from fma_django_connectors import schemas
from fma_django_connectors.models import FederatedModel
from tests.servers import serving

from .conftest import make_aggregate, make_model, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

MODELS = "/api/v1/models/"
SECRET = "INTERNAL-SECRET-VALUE-42"
# Python's ``re`` takes twice as long for each character more (1.45 s at 24); RE2 is linear.
EXPONENTIAL = "^(a|a)*$"
ADVERSARIAL = "a" * 10_000 + "b"


class _InternalService(BaseHTTPRequestHandler):
    """A service only the API's network can reach: it answers a schema holding a secret, and notes each call."""

    def do_GET(self):
        self.server.calls.append(self.path)
        body = json.dumps({"const": SECRET}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def internal_service():
    """The URL of a real HTTP server on 127.0.0.1; ``.calls`` lists the paths it was asked for."""
    with serving(_InternalService) as server:
        server.calls = []
        yield server


def _remote(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/schema.json"


def _create(api, **fields):
    return api.post(MODELS, {"name": "schemas", "aggregator": "avg_values_if_data", **fields}, format="json")


class TestNothingIsFetched:
    @pytest.mark.parametrize("field", ["update_schema", "client_agg_results_schema"])
    @pytest.mark.parametrize(
        "place",
        [
            lambda url: {"$ref": url},
            lambda url: {"type": "object", "properties": {"accuracy": {"$ref": url}}},
            lambda url: {"$defs": {"remote": {"$ref": url}}, "$ref": "#/$defs/remote"},
            lambda url: {"$schema": "http://json-schema.org/draft-07/schema#", "items": {"$ref": url}},
        ],
    )
    def test_a_remote_ref_is_refused_at_create(self, developer_api, internal_service, field, place):
        url = _remote(internal_service)
        response = _create(developer_api, **{field: place(url)})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            field: [f"$ref '{url}' is not local: a schema may refer only within itself (#...), nothing is fetched"]
        }
        assert not FederatedModel.objects.exists()
        assert internal_service.calls == []

    def test_a_relative_ref_is_refused_too(self, developer_api):
        # Resolved against the schema's base URI, it would name another document.
        response = _create(developer_api, update_schema={"$id": "http://127.0.0.1:9/", "$ref": "secret.json"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "$ref 'secret.json' is not local" in response.json()["update_schema"][0]

    def test_a_remote_ref_is_refused_at_update(self, developer_api, developer, internal_service):
        model = make_model(developer)
        response = developer_api.patch(
            f"{MODELS}{model.pk}/", {"update_schema": {"$ref": _remote(internal_service)}}, format="json"
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert list(response.json()) == ["update_schema"]
        model.refresh_from_db()
        assert model.update_schema is None
        assert internal_service.calls == []

    def test_a_stored_remote_ref_is_never_fetched_for_an_update(self, fed_client_api, model, internal_service):
        # The API refuses it; the admin (or the database) may hold it all the same.
        FederatedModel.objects.filter(pk=model.pk).update(update_schema={"$ref": _remote(internal_service)})
        response = fed_client_api.post(
            "/api/v1/model_updates/", {"federated_model": model.pk, "data": [1]}, format="json"
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["data"].startswith("the model's schema for data cannot be used: $ref ")
        assert SECRET not in response.content.decode()
        assert internal_service.calls == []

    def test_a_stored_remote_ref_is_never_fetched_for_a_score(self, fed_client_api, model, internal_service):
        aggregate = make_aggregate(model, [0, 0])
        nested = {"type": "object", "properties": {"accuracy": {"$ref": _remote(internal_service)}}}
        FederatedModel.objects.filter(pk=model.pk).update(client_agg_results_schema=nested)
        response = fed_client_api.post(
            "/api/v1/client_aggregate_scores/",
            {"aggregate": aggregate.pk, "validation_results": {"accuracy": 0.5}},
            format="json",
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert SECRET not in response.content.decode()
        assert internal_service.calls == []

    def test_local_refs_still_work(self, developer_api, fed_client, developer):
        schema = {"$defs": {"weights": {"type": "array", "maxItems": 2}}, "$ref": "#/$defs/weights"}
        created = _create(developer_api, update_schema=schema)
        assert created.status_code == status.HTTP_201_CREATED
        model = FederatedModel.objects.get(pk=created.json()["id"])
        model.clients.add(fed_client)
        api = uuid_client(fed_client)
        accepted = api.post("/api/v1/model_updates/", {"federated_model": model.pk, "data": [1, 2]}, format="json")
        assert accepted.status_code == status.HTTP_201_CREATED
        refused = api.post("/api/v1/model_updates/", {"federated_model": model.pk, "data": [1, 2, 3]}, format="json")
        assert refused.json() == {"data": "data did not match the required schema: [1, 2, 3] is too long"}

    def test_the_validator_retrieves_nothing(self, internal_service):
        # Below the API's own refusal: even a schema that slipped past it resolves nothing remote.
        schema = {"$ref": _remote(internal_service)}
        validator = schemas.validator_class_for(schema)(schema, registry=schemas.NO_RETRIEVAL)
        with pytest.raises(Unresolvable):
            list(validator.iter_errors(1))
        assert internal_service.calls == []


def _score_schema(pattern: str) -> dict:
    return {"type": "object", "properties": {"label": {"type": "string", "pattern": pattern}}}


class TestPatternsRunInLinearTime:
    @pytest.mark.parametrize(
        "schema",
        [
            {},
            {"$schema": "http://json-schema.org/draft-04/schema#"},
            {"$schema": "http://json-schema.org/draft-07/schema#"},
            {"$schema": "https://json-schema.org/draft/2019-09/schema"},
        ],
    )
    def test_every_pattern_keyword_of_every_draft_runs_on_re2(self, schema):
        keywords = schemas.validator_class_for(schema).VALIDATORS
        for keyword, on_re2 in schemas.RE2_KEYWORDS.items():
            assert keywords[keyword] is on_re2

    @pytest.mark.parametrize(
        ("schema", "document", "message"),
        [
            (_score_schema(EXPONENTIAL), {"label": ADVERSARIAL}, f"{ADVERSARIAL!r} does not match {EXPONENTIAL!r}"),
            (
                {"type": "object", "patternProperties": {EXPONENTIAL: {"type": "number"}}},
                {"a" * 10_000: "not a number"},
                "'not a number' is not of type 'number'",
            ),
            (
                {"type": "object", "patternProperties": {EXPONENTIAL: {}}, "additionalProperties": False},
                {ADVERSARIAL: 1},
                f"{ADVERSARIAL!r} does not match any of the regexes: {EXPONENTIAL!r}",
            ),
        ],
    )
    def test_a_10kb_adversarial_document_is_answered(self, fed_client_api, model, schema, document, message):
        # With Python's ``re`` each of these would take longer than the universe has existed.
        aggregate = make_aggregate(model, [0, 0])
        FederatedModel.objects.filter(pk=model.pk).update(client_agg_results_schema=schema)
        response = fed_client_api.post(
            "/api/v1/client_aggregate_scores/",
            {"aggregate": aggregate.pk, "validation_results": document},
            format="json",
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "validation_results": f"validation_results did not match the required schema: {message}"
        }

    def test_a_long_matching_string_is_accepted(self, fed_client_api, model):
        aggregate = make_aggregate(model, [0, 0])
        FederatedModel.objects.filter(pk=model.pk).update(client_agg_results_schema=_score_schema(EXPONENTIAL))
        response = fed_client_api.post(
            "/api/v1/client_aggregate_scores/",
            {"aggregate": aggregate.pk, "validation_results": {"label": "a" * 10_000}},
            format="json",
        )
        assert response.status_code == status.HTTP_201_CREATED

    @pytest.mark.parametrize(
        ("schema", "pattern"),
        [
            (_score_schema(r"^(a+)\1$"), r"^(a+)\1$"),
            ({"patternProperties": {"^(?=x)": {}}}, "^(?=x)"),
        ],
    )
    @pytest.mark.parametrize("field", ["update_schema", "client_agg_results_schema"])
    def test_a_pattern_re2_cannot_run_is_refused_at_create(self, developer_api, field, schema, pattern):
        response = _create(developer_api, **{field: schema})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        [message] = response.json()[field]
        assert message.startswith(f"the pattern {pattern!r} cannot run in linear time (RE2: ")
        assert "b'" not in message  # RE2's reason as text
        assert not FederatedModel.objects.exists()

    def test_unevaluated_properties_beside_pattern_properties_is_refused(self, developer_api):
        schema = {"allOf": [{"patternProperties": {"^a": {}}}], "unevaluatedProperties": False}
        response = _create(developer_api, client_agg_results_schema=schema)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "client_agg_results_schema": [
                "patternProperties and unevaluatedProperties in one schema are not supported: use additionalProperties"
            ]
        }


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$schema": 5}, "not a valid JSON Schema: 5 is not of type 'string'"),
        ({"$schema": "http://example.com/no-such-draft", "pattern": "(a)\\1"}, "the pattern '(a)\\\\1' cannot run"),
    ],
)
def test_a_schema_naming_no_known_draft_is_checked_as_the_latest(developer_api, schema, message):
    response = _create(developer_api, update_schema=schema)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["update_schema"][0].startswith(message)
