"""The OpenAPI description (``/api/schema/``) and its interactive docs (``/api/docs/``), through the Lambda handler."""

import base64
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

import service_initialization
from fma_core import signatures
from fma_django_connectors.access import authentication
from fma_django_connectors.access.permissions import SIGNATURE_REQUIRED
from fma_django_connectors.api.openapi import SIGNATURE_SCHEMES
from tests.events import make_context, make_v1_event, make_v2_event, response_body
from tests.servers import RunningServer

pytestmark = pytest.mark.usefixtures("keep_test_connection")

OPENAPI_JSON = "application/vnd.oai.openapi+json"


def handle(event):
    return service_initialization.handler(event, make_context())


def _header(response, name):
    headers = response.get("multiValueHeaders") or {key: [value] for key, value in response["headers"].items()}
    return next(values for key, values in headers.items() if key.lower() == name.lower())


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = handle(make_v2_event(path="/api/schema/", headers={"Accept": OPENAPI_JSON}))
    assert response["statusCode"] == 200, response_body(response)
    return json.loads(response_body(response))


def _api_patterns(resolver=None, prefix=""):
    """Every route of the API as an OpenAPI path template (``{id}`` for the object's key)."""
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = prefix + str(entry.pattern).lstrip("^").rstrip("$")
        if isinstance(entry, URLResolver):
            yield from _api_patterns(entry, pattern)
        elif isinstance(entry, URLPattern) and pattern.startswith(("api/v1/", "api-token-auth/")):
            yield "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>", _template_parameter, pattern)


def _template_parameter(match):
    name = match[1] or match[2]
    return "{id}" if name == "pk" else f"{{{name}}}"


def test_schema_is_valid_openapi(schema):
    validate(schema)

    assert schema["openapi"].startswith("3.")


def test_every_api_route_is_described(schema):
    # The router's API root and its ``.json`` suffix variants are browsing aids, not routes of the contract.
    routes = {route for route in _api_patterns() if "{format}" not in route and route != "/api/v1/"}

    assert routes, "no API route found"
    assert routes - set(schema["paths"]) == set()


def test_security_schemes_client_uuid_and_token(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["clientUuid"] == {**schemes["clientUuid"], "type": "apiKey", "in": "header", "name": "CLIENT-UUID"}
    assert schemes["tokenAuth"]["name"] == "Authorization"
    assert schemes["basicAuth"] == {"type": "http", "scheme": "basic"}
    register = schema["paths"]["/api/v1/models/{id}/register_client/"]["post"]
    assert {} in register["security"], "register_client is open to anonymous callers"
    assert {"clientUuid": []} in schema["paths"]["/api/v1/model_updates/"]["post"]["security"]


def test_request_bodies_and_error_shapes(schema):
    create = schema["paths"]["/api/v1/models/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    required = schema["components"]["schemas"][body]["required"]

    assert {"name", "aggregator"} <= set(required)
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/FieldErrors")
    assert create["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorDetail")
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]
    complete = schema["paths"]["/api/v1/uploads/{id}/complete/"]["post"]["responses"]
    assert {"200", "201", "404", "409", "410"} <= set(complete)


def test_binary_formats_of_the_weights_routes(schema):
    latest = schema["paths"]["/api/v1/models/{id}/get_latest_model/"]["get"]
    formats = next(parameter for parameter in latest["parameters"] if parameter["name"] == "format")

    assert sorted(formats["schema"]["enum"]) == ["json", "npz", "safetensors"]
    assert set(latest["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    assert latest["responses"]["200"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    assert "Location" in latest["responses"]["303"]["headers"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "entry_script"),
    [("/api/docs/", "swagger-ui-bundle.js"), ("/api/docs/redoc/", "redoc.standalone.js")],
)
@pytest.mark.parametrize("build", [make_v1_event, make_v2_event], ids=["v1", "v2"])
def test_docs_pages_and_their_assets_are_served_by_the_service(page, entry_script, build):
    response = handle(build(path=page))

    assert response["statusCode"] == 200
    html = response_body(response).decode()
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
    assert any(asset.endswith(entry_script) for asset in assets), html
    # The Content-Security-Policy runs no inline script: every script of the page is a file of the service.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts
    assert [attributes for attributes, text in scripts if "src=" not in attributes or text.strip()] == []
    assert (
        "'unsafe-inline'"
        not in re.search(r"(?:script|default)-src[^;]*", _header(response, "Content-Security-Policy")[0])[0]
    )
    assert "cdn" not in " ".join(re.findall(r'(?:src|href)="([^"]+)"', html)).lower()
    for asset in assets:
        served = handle(build(path=asset))
        assert served["statusCode"] == 200, asset
        assert len(response_body(served)) > 0, asset


@pytest.mark.integration
def test_docs_and_schema_through_the_local_server(tmp_path):
    server = RunningServer(tmp_path / "server").wait_ready()
    try:
        status, headers, page = server.request("GET", "/api/docs/")
        assert status == 200
        bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+swagger-ui-bundle\.js)"', page.decode())[1]
        status, headers, script = server.request("GET", bundle)
        assert status == 200
        assert "javascript" in headers["Content-Type"]
        assert len(script) > 100_000
        status, _, body = server.request("GET", "/api/schema/", headers={"Accept": OPENAPI_JSON})
        assert status == 200
        validate(json.loads(body))
    finally:
        server.stop()


# The routes a federated client calls, as (path, method).
CLIENT_ROUTES = [
    ("/api/v1/models/{id}/register_client/", "post"),
    ("/api/v1/models/{id}/get_latest_model/", "get"),
    ("/api/v1/models/{id}/get_latest_aggregate/", "get"),
    ("/api/v1/models/{id}/get_current_artifact/", "get"),
    ("/api/v1/model_aggregates/", "get"),
    ("/api/v1/model_aggregates/{id}/result/", "get"),
    ("/api/v1/model_artifacts/", "get"),
    ("/api/v1/model_updates/", "post"),
    ("/api/v1/client_aggregate_scores/", "post"),
    ("/api/v1/uploads/", "post"),
    ("/api/v1/uploads/{id}/complete/", "post"),
]


class TestSignedClients:
    """The schema alone tells a client author how to sign (RFC 9421), in the service's own terms."""

    def test_the_signature_headers_are_the_ones_the_service_reads(self, schema):
        schemes = schema["components"]["securitySchemes"]
        named = [schemes[name] for name in SIGNATURE_SCHEMES]

        assert [scheme["name"] for scheme in named] == ["Signature-Input", "Signature", "Content-Digest"]
        assert {(scheme["type"], scheme["in"]) for scheme in named} == {("apiKey", "header")}
        assert not any("FMA-" in json.dumps(scheme) for scheme in schemes.values()), "the old scheme is gone"

    @pytest.mark.parametrize(("path", "method"), CLIENT_ROUTES)
    def test_client_routes_take_the_uuid_alone_or_with_a_signature(self, schema, path, method):
        security = schema["paths"][path][method]["security"]
        signed = {"clientUuid": [], "signatureInput": [], "signature": []}
        if method in ("post", "put", "patch"):
            signed["contentDigest"] = []

        assert {"clientUuid": []} in security
        assert signed in security
        assert "401" in schema["paths"][path][method]["responses"]

    def test_a_signature_made_from_the_description_alone_is_accepted(self, schema):
        """Sign the described base as a client in another language would; the service's check accepts it."""
        description = schema["components"]["securitySchemes"]["signatureInput"]["description"]
        base = re.search(r"```\n(.*?)\n```", description, re.DOTALL)[1]
        lines = dict(line.split(": ", 1) for line in base.splitlines())
        body = re.search(r"the update `([^`]+)`", description)[1].encode()
        params = lines['"@signature-params"']
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        headers = {
            "CLIENT-UUID": lines['"client-uuid"'],
            "Content-Digest": lines['"content-digest"'],
            "Signature-Input": f"fma={params}",
            "Signature": f"fma=:{base64.b64encode(key.sign(base.encode())).decode()}:",
        }
        created = int(re.search(r";created=(\d+)", params)[1])

        verified = signatures.signature_verify(
            method=lines['"@method"'],
            url=lines['"@target-uri"'],
            headers=headers.items(),
            body=body,
            key_id=headers["CLIENT-UUID"],
            key_id_rule="",
            public_key=public,
            components=signatures.CLIENT_COMPONENTS,
            now=created,
        )

        assert verified.key_id == headers["CLIENT-UUID"]
        assert f"`Content-Digest: {headers['Content-Digest']}`" in description
        assert f"±{signatures.MAX_SKEW_SECONDS} s" in description
        assert "/Prod/api/v1/model_updates/" in description
        assert "/Prod/" not in lines['"@target-uri"']

    def test_the_401_answers_are_the_services_own_messages(self, schema):
        examples = schema["components"]["examples"]
        details = {name: example["value"]["detail"] for name, example in examples.items()}

        assert {
            signatures.INCOMPLETE,
            signatures.MALFORMED,
            signatures.STALE,
            signatures.MALFORMED_NONCE,
            signatures.WRONG_ALGORITHM,
            signatures.DIGEST_INVALID,
            signatures.INVALID,
            signatures.wrong_key_id(authentication.CLIENT_KEY_ID),
            signatures.wrong_key_id(authentication.REGISTRATION_KEY_ID),
            authentication.REPLAYED_NONCE,
            authentication.KEY_UNPROVEN,
            authentication.UNKNOWN_UUID,
            SIGNATURE_REQUIRED,
        } <= set(details.values())
        answer = schema["paths"]["/api/v1/model_updates/"]["post"]["responses"]["401"]["content"]["application/json"]
        assert {example["$ref"].rsplit("/", 1)[1] for example in answer["examples"].values()} == set(examples)

    def test_registration_takes_the_public_key(self, schema):
        register = schema["paths"]["/api/v1/models/{id}/register_client/"]["post"]
        body = register["requestBody"]
        fields = schema["components"]["schemas"][body["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]]

        assert body.get("required", False) is False, "old clients register without a body"
        assert {"public_key", "enrollment_token"} == set(fields["properties"])
        assert "32 raw bytes" in fields["properties"]["public_key"]["description"]
        add = schema["paths"]["/api/v1/models/{id}/add_client/"]["post"]
        assert add["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/NewClientRequest")
        assert add["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RegisteredClient")
        for operation in (register, add):
            taken = operation["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
            assert taken.endswith("/PublicKeyTaken")


class TestGeneratedClients:
    """What a client generator needs from the description: one body type per operation, fields as the service
    takes them, one tag per resource, short and stable operation ids, and the JSON form on request."""

    def test_the_token_route_is_described_as_json_only(self, schema):
        login = schema["paths"]["/api-token-auth/"]["post"]
        body = schema["components"]["schemas"][
            login["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        ]

        assert set(login["requestBody"]["content"]) == {"application/json"}
        assert set(body["required"]) == {"username", "password"}
        answer = login["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["components"]["schemas"][answer["$ref"].rsplit("/", 1)[1]]["required"] == ["token"]

    @pytest.mark.parametrize("form", [make_v2_event], ids=["v2"])
    def test_the_token_route_still_takes_a_form(self, form, django_user_model):
        django_user_model.objects.create_user("form-user", password="form-password")
        response = handle(
            form(
                method="POST",
                path="/api-token-auth/",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body="username=form-user&password=form-password",
            )
        )

        assert response["statusCode"] == 200, response_body(response)
        assert set(json.loads(response_body(response))) == {"token"}

    @pytest.mark.parametrize("path", ["/api/v1/model_updates/", "/api/v1/client_aggregate_scores/"])
    def test_client_is_optional_where_the_header_supplies_it(self, schema, path):
        create = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = schema["components"]["schemas"][create.rsplit("/", 1)[1]]

        assert "client" in body["properties"]
        assert "client" not in body["required"]
        assert "CLIENT-UUID" in body["properties"]["client"]["description"]

    def test_one_tag_per_resource(self, schema):
        for path, methods in schema["paths"].items():
            resource = "token" if path == "/api-token-auth/" else path.split("/")[3]
            for operation in methods.values():
                assert operation["tags"] == [resource], path

    def test_short_stable_operation_ids(self, schema):
        ids = {
            (method, path): operation["operationId"]
            for path, methods in schema["paths"].items()
            for method, operation in methods.items()
        }

        assert ids == OPERATION_IDS

    def test_the_docs_pages_are_not_operations(self, schema):
        assert not [path for path in schema["paths"] if path.startswith("/api/docs/")]


# Every operation's id, as docs/api.md lists them: ``<resource>_<list|create|retrieve|update|partial_update|destroy>``
# for the standard actions, ``<resource>_<action>`` for the others. Generated clients name their functions so.
OPERATION_IDS = {
    ("post", "/api-token-auth/"): "token_create",
    ("get", "/api/v1/client_aggregate_scores/"): "client_aggregate_scores_list",
    ("post", "/api/v1/client_aggregate_scores/"): "client_aggregate_scores_create",
    ("get", "/api/v1/client_aggregate_scores/{id}/"): "client_aggregate_scores_retrieve",
    ("get", "/api/v1/enrollment_tokens/"): "enrollment_tokens_list",
    ("post", "/api/v1/enrollment_tokens/"): "enrollment_tokens_create",
    ("get", "/api/v1/enrollment_tokens/{id}/"): "enrollment_tokens_retrieve",
    ("delete", "/api/v1/enrollment_tokens/{id}/"): "enrollment_tokens_destroy",
    ("get", "/api/v1/model_aggregates/"): "model_aggregates_list",
    ("get", "/api/v1/model_aggregates/{id}/"): "model_aggregates_retrieve",
    ("post", "/api/v1/model_aggregates/{id}/publish_aggregate/"): "model_aggregates_publish_aggregate",
    ("get", "/api/v1/model_aggregates/{id}/result/"): "model_aggregates_result",
    ("get", "/api/v1/model_artifacts/"): "model_artifacts_list",
    ("get", "/api/v1/model_artifacts/{id}/"): "model_artifacts_retrieve",
    ("get", "/api/v1/model_artifacts/{id}/values/"): "model_artifacts_values",
    ("get", "/api/v1/model_updates/"): "model_updates_list",
    ("post", "/api/v1/model_updates/"): "model_updates_create",
    ("get", "/api/v1/model_updates/{id}/"): "model_updates_retrieve",
    ("put", "/api/v1/model_updates/{id}/"): "model_updates_update",
    ("patch", "/api/v1/model_updates/{id}/"): "model_updates_partial_update",
    ("delete", "/api/v1/model_updates/{id}/"): "model_updates_destroy",
    ("get", "/api/v1/model_updates/{id}/data/"): "model_updates_download_data",
    ("get", "/api/v1/models/"): "models_list",
    ("post", "/api/v1/models/"): "models_create",
    ("get", "/api/v1/models/{id}/"): "models_retrieve",
    ("put", "/api/v1/models/{id}/"): "models_update",
    ("patch", "/api/v1/models/{id}/"): "models_partial_update",
    ("delete", "/api/v1/models/{id}/"): "models_destroy",
    ("post", "/api/v1/models/{id}/add_client/"): "models_add_client",
    ("get", "/api/v1/models/{id}/get_current_artifact/"): "models_get_current_artifact",
    ("get", "/api/v1/models/{id}/get_latest_aggregate/"): "models_get_latest_aggregate",
    ("get", "/api/v1/models/{id}/get_latest_model/"): "models_get_latest_model",
    ("post", "/api/v1/models/{id}/register_client/"): "models_register_client",
    ("post", "/api/v1/uploads/"): "uploads_create",
    ("post", "/api/v1/uploads/{id}/complete/"): "uploads_complete",
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "media_type"),
    [
        ({"format": "json"}, "application/vnd.oai.openapi+json"),
        ({"format": "yaml"}, "application/vnd.oai.openapi"),
        ({}, "application/vnd.oai.openapi"),
    ],
)
def test_the_schema_format_parameter_is_honoured(query, media_type):
    response = handle(make_v2_event(path="/api/schema/", query=query))

    assert response["statusCode"] == 200
    assert _header(response, "Content-Type")[0].startswith(media_type)
    body = response_body(response)
    if "json" in media_type:
        assert json.loads(body)["openapi"].startswith("3.")
    else:
        assert body.startswith(b"openapi: 3.")


@pytest.mark.django_db
def test_an_unknown_schema_format_is_refused_by_name():
    response = handle(make_v2_event(path="/api/schema/", query={"format": "xml"}))

    assert response["statusCode"] == 400
    assert json.loads(response_body(response)) == {"format": ["Unknown format 'xml'; one of json, yaml."]}


@pytest.mark.django_db
def test_the_pages_carry_the_configured_policy_and_redoc_adds_its_worker(settings):
    settings.FMA_CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'"

    swagger = handle(make_v2_event(path="/api/docs/"))
    redoc = handle(make_v2_event(path="/api/docs/redoc/"))

    assert _header(swagger, "Content-Security-Policy") == ["default-src 'self'; frame-ancestors 'none'"]
    assert _header(redoc, "Content-Security-Policy") == [
        "default-src 'self'; frame-ancestors 'none'; worker-src 'self' blob:"
    ]
