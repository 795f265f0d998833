"""The OpenAPI description of the API, generated from the views by drf-spectacular (``/api/schema/``).

The views stay declarative: what drf-spectacular cannot infer from them (the answers of the custom actions,
the weights formats of ``?format=``, the ``CLIENT-UUID`` and signed-request schemes, the error bodies) is
said here, by extensions that drf-spectacular finds by the import path of the class they describe, and by one
postprocessing hook that documents the error responses every operation may give. ``apps.ready()`` imports
this module so that the extensions are registered before the first schema is generated.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from django.db.models import Model
from drf_spectacular import openapi as spectacular_openapi
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import NotAuthenticated

from fma_core import signatures
from fma_django_connectors import client_ids
from fma_django_connectors.access import authentication, enrollment
from fma_django_connectors.access.permissions import SIGNATURE_REQUIRED
from fma_django_connectors.api import serializers
from fma_django_connectors.models import (
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
    Upload,
)
from fma_django_connectors.storage import downloads

# --- Tags and operation ids ------------------------------------------------------------------------

# DRF's own actions of a viewset; their ids stay drf-spectacular's ``<resource>_<action>`` (``models_list``).
_STANDARD_ACTIONS = {"list", "create", "retrieve", "update", "partial_update", "destroy"}


class AutoSchema(spectacular_openapi.AutoSchema):
    """Short, stable operation ids, which generated clients name their functions by.

    With ``SCHEMA_PATH_PREFIX`` (``/api/v1``) each operation's tag is its resource (``models``) and the id of a
    standard action ``<resource>_<action>``; a custom action's id is ``<resource>_<action>`` too
    (``models_register_client``) instead of drf-spectacular's path with a method suffix.
    """

    def get_operation_id(self) -> str:
        action = getattr(self.view, "action", None)
        if action is not None and action not in _STANDARD_ACTIONS:
            return f"{self.get_tags()[0]}_{action}"
        operation_id: str = super().get_operation_id()
        return operation_id


# --- Security schemes --------------------------------------------------------------------------------


# Security scheme name → signature header (RFC 9421 and RFC 9530), as the operations' ``security`` names them.
SIGNATURE_SCHEMES = {
    "signatureInput": signatures.SIGNATURE_INPUT_HEADER,
    "signature": signatures.SIGNATURE_HEADER,
    "contentDigest": signatures.DIGEST_HEADER,
}
# A worked example: a client's update, its Content-Digest and signature base (RFC 9421 section 2.5).
EXAMPLE_BODY = b'{"federated_model": 3, "data": [0.5]}'
EXAMPLE_UUID = "0b7e1c7a-3f52-4c1e-9a0e-2d4f5e6a7b8c"
EXAMPLE_DIGEST = f"sha-256=:{base64.b64encode(hashlib.sha256(EXAMPLE_BODY).digest()).decode()}:"
EXAMPLE_PARAMS = (
    '("@method" "@target-uri" "client-uuid" "content-digest");created=1700000000;'
    f'keyid="{EXAMPLE_UUID}";nonce="pQz0m3v4E1pPAjqvS1mQZb3f1y8";alg="{signatures.ALGORITHM}"'
)
SIGNATURE_BASE_EXAMPLE = f"""\
"@method": POST
"@target-uri": https://abc123.execute-api.eu-west-1.amazonaws.com/api/v1/model_updates/?page=2
"client-uuid": {EXAMPLE_UUID}
"content-digest": {EXAMPLE_DIGEST}
"@signature-params": {EXAMPLE_PARAMS}"""

_SIGNING = f"""Models with `client_auth: "signed"` take only signed requests from their clients: \
[RFC 9421](https://www.rfc-editor.org/rfc/rfc9421) HTTP Message Signatures with the algorithm \
`{signatures.ALGORITHM}`, bodies bound by their [RFC 9530](https://www.rfc-editor.org/rfc/rfc9530) \
`Content-Digest`. Any RFC 9421 library does it; `docs/security.md` shows it with `curl` and `openssl`.

**Registering.** A client makes an Ed25519 key pair and sends \
`{{"public_key": "<base64 of the 32 raw bytes of its public key>"}}` to `register_client`, signed with that \
key (`keyid` = that `public_key`, covering `{"`, `".join(signatures.REGISTRATION_COMPONENTS)}`): so it \
proves it holds the key. A key names one client: registering it for a second client is a 409.

**Each request** of the client then carries, beside `CLIENT-UUID`:

- `Signature-Input: fma=("@method" "@target-uri" "client-uuid" "content-digest");created=<Unix seconds>;\
keyid="<the client's uuid>";nonce="<fresh random>";alg="{signatures.ALGORITHM}"` (any label, one signature; \
without a body, leave `"content-digest"` out);
- `Signature: fma=:<base64 of the 64-byte Ed25519 signature of the signature base>:`;
- with a body, `Content-Digest: sha-256=:<base64 of the SHA-256 of the body as sent>:`.

Covered components (all required, in any order): `@method`; `@target-uri`: `<scheme>://<Host header>` \
(without a default port), then the path **below the service root** (an API Gateway stage prefix such as \
`/Prod` is left out: the service never sees it), percent-encoded only where RFC 3986 requires (outside \
`A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @ /`), then `?` and the query **exactly as sent** (so reordering \
or repeating a parameter breaks the signature); `client-uuid`; `content-digest` when the request has a body \
(checked against the body). For example, the update `{EXAMPLE_BODY.decode()}` sent to \
`https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/api/v1/model_updates/?page=2` has the signature base \
below (its lines joined by `\\n`, no newline at the end; the base's bytes are what Ed25519 signs), and is \
sent with `Content-Digest: {EXAMPLE_DIGEST}` and `Signature-Input: fma={EXAMPLE_PARAMS}`:

```
{SIGNATURE_BASE_EXAMPLE}
```

`created` must be within ±{signatures.MAX_SKEW_SECONDS} s of the service's clock. A `nonce` (16 to 128 \
visible ASCII characters, no quotes or backslashes) is single-use per key: the service keeps it until no \
request carrying it could be on time, and refuses it again as a replay; sign each request (each retry \
included) afresh. Any request that carries a signature is checked, on any model; on a `signed` model a \
registered client's request without one is refused, and its lists leave the model out. Every refusal is a \
401 `{{"detail": "..."}}` (see the examples of the 401 answers)."""

_SIGNATURE_HEADER_DESCRIPTIONS = {
    signatures.SIGNATURE_INPUT_HEADER: "RFC 9421 `Signature-Input`: one signature's covered components and "
    "parameters (`created`, `nonce`, `keyid`, optionally `alg`).\n\n" + _SIGNING,
    signatures.SIGNATURE_HEADER: "RFC 9421 `Signature`: the Ed25519 signature of the signature base, as a "
    "Structured Field Byte Sequence (`label=:<base64>:`) under the label of `Signature-Input`.",
    signatures.DIGEST_HEADER: "RFC 9530 `Content-Digest` of a request with a body: `sha-256=:<base64 of the "
    "SHA-256 of the body as sent>:`, covered by the signature and checked against the body.",
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class ClientUUIDScheme(OpenApiAuthenticationExtension):
    """``CLIENT-UUID: <uuid>``, alone or (``signed`` models) with an RFC 9421 signature.

    Two alternatives of the operations' ``security``: ``clientUuid`` alone, or with ``signatureInput`` and
    ``signature`` (and ``contentDigest`` on operations with a body) together: one ``apiKey`` scheme per
    header, as OpenAPI 3.0 has them.
    """

    target_class = "fma_django_connectors.access.authentication.ClientUUIDAuthentication"
    name = ["clientUuid", *SIGNATURE_SCHEMES]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        signed = ["clientUuid", "signatureInput", "signature"]
        if getattr(auto_schema, "method", "").upper() in _BODY_METHODS:
            signed.append("contentDigest")
        return [{"clientUuid": []}, {name: [] for name in signed}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        client_uuid = {
            "type": "apiKey",
            "in": "header",
            "name": "CLIENT-UUID",
            "description": "A federated client's uuid, as answered by `register_client`. Unknown: 401 "
            '`{"detail": "Invalid UUID"}`; malformed: 401 `{"detail": "\\"<value>\\" is not a valid UUID."}`. '
            'On models with `client_auth: "signed"`, with an RFC 9421 signature (`Signature-Input`, `Signature`).',
        }
        headers = [
            {"type": "apiKey", "in": "header", "name": header, "description": _SIGNATURE_HEADER_DESCRIPTIONS[header]}
            for header in SIGNATURE_SCHEMES.values()
        ]
        return [client_uuid, *headers]


class GuardedBasicScheme(BasicScheme):
    """HTTP Basic, whose failed passwords count towards the login brake (``throttling``)."""

    target_class = "fma_django_connectors.access.authentication.GuardedBasicAuthentication"


# --- Weights -----------------------------------------------------------------------------------------

_WEIGHTS_DESCRIPTION = (
    "Weights as JSON: one numeric array of any rank, or a list of layers of different shapes (named tensors "
    "render as the list of their arrays). In list responses, and in a write's answer when the weights do not "
    "fit a response, the absolute URL of the route that serves them (`?format=safetensors|npz|json`)."
)
_WEIGHTS_DOCUMENT = {"type": "array", "items": {}, "description": "nested lists of numbers"}
_WEIGHTS_URL = {"type": "string", "format": "uri", "description": "URL serving the weights"}
_WEIGHTS_OR_URL = {"oneOf": [_WEIGHTS_DOCUMENT, _WEIGHTS_URL], "description": _WEIGHTS_DESCRIPTION}


class WeightsFieldSchema(OpenApiSerializerFieldExtension):
    """``WeightsField``: a JSON document of weights, or the URL that serves them."""

    target_class = "fma_django_connectors.api.serializers.WeightsField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "request":
            return {**_WEIGHTS_DOCUMENT, "description": _WEIGHTS_DESCRIPTION}
        return _WEIGHTS_OR_URL


class ClientFieldSchema(OpenApiSerializerFieldExtension):
    """``ClientField``: a client as developers see and name it (``client_ids``)."""

    target_class = "fma_django_connectors.api.serializers.ClientField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {
            "type": "string",
            "description": "The client's uuid; on `signed` models its public id (`client:` and 32 hex digits), "
            "which is not a credential. A developer names a `signed` model's client by either.",
        }


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    str,
    enum=list(downloads.FORMATS),
    description="Weights format of the answer: `safetensors` (dtypes kept) or `npz` (no pickle) as "
    "`application/octet-stream`, or `json`. Inline when the answer fits a Lambda response (6 MB), "
    "else a `303` to a signed, expiring URL of the file. Without it: the JSON document of the contract.",
)
_LOCATION_HEADER = OpenApiParameter(
    "Location", str, location=OpenApiParameter.HEADER, response=[303], description="Signed, expiring URL of the file."
)


def _weights_header(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, location=OpenApiParameter.HEADER, response=[200, 303], description=what)


_AGGREGATE_HEADER = _weights_header(downloads.AGGREGATE_HEADER, "Id of the aggregate whose weights these are.")
_ARTIFACT_HEADER = _weights_header(downloads.ARTIFACT_HEADER, "Id of the artifact whose weights these are.")
_BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The weights as safetensors or npz (`?format=`).")
_REDIRECT = OpenApiResponse(description="The weights are too large to answer inline: follow `Location`.")


def _weights_responses(json_document: Any, description: str) -> dict[Any, Any]:
    return {
        (200, "application/json"): OpenApiResponse(json_document, description=description),
        (200, "application/octet-stream"): _BINARY,
        303: _REDIRECT,
    }


def _weights_route(json_document: Any, description: str, *headers: OpenApiParameter) -> Any:
    return extend_schema(
        parameters=[FORMAT_PARAMETER, _LOCATION_HEADER, *headers],
        responses=_weights_responses(json_document, description),
    )


_WEIGHTS_JSON = {**_WEIGHTS_DOCUMENT, "description": _WEIGHTS_DESCRIPTION}
_REGISTERED = inline_serializer("RegisteredClient", fields={"uuid": drf_serializers.UUIDField()})
_KEY_TAKEN = OpenApiResponse(
    inline_serializer("PublicKeyTaken", fields={"public_key": drf_serializers.CharField()}),
    description="The `public_key` is already another client's: a key names one client.",
)
_LATEST_MODEL = {
    "type": "object",
    "properties": {
        "values": _WEIGHTS_OR_URL,
        "aggregate": {"type": "integer", "nullable": True, "description": "Newest aggregate's id, or null."},
    },
    "required": ["values", "aggregate"],
}
_NO_WEIGHTS = {"type": "object", "maxProperties": 0, "description": "`{}`: no weights yet."}


def _document_or_weights(document: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer of a route that answers a document by default: the document, ``{}`` when there are no
    weights yet, or (``?format=json``) the weights themselves."""
    return {"oneOf": [document, _NO_WEIGHTS, _WEIGHTS_JSON]}


def _component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_UPLOAD_TARGET = inline_serializer(
    "UploadTarget",
    fields={
        "id": drf_serializers.UUIDField(),
        "upload_url": drf_serializers.URLField(help_text="Where to send the bytes, before `expires_at`."),
        "method": drf_serializers.CharField(help_text="`PUT`"),
        "headers": drf_serializers.DictField(child=drf_serializers.CharField(), help_text="Headers to send."),
        "expires_at": drf_serializers.DateTimeField(),
    },
)


# --- Serializers whose answers drf-spectacular cannot infer -------------------------------------------


class FederatedModelSchema(OpenApiSerializerExtension):
    """A model's ``clients`` in answers: uuids, but public ids on ``signed`` models (not credentials)."""

    target_class = "fma_django_connectors.api.serializers.FederatedModelSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super().map_serializer(auto_schema, direction)
        if direction == "response":
            schema["properties"]["clients"] = {
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": f"^({_UUID_PATTERN}|{client_ids.PUBLIC_ID_PATTERN.pattern})$",
                    "description": "A client's uuid; on `signed` models its public id (`client:` and 32 hex "
                    "digits), which is not a credential.",
                },
            }
        return schema


_UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


_CLIENT_FROM_HEADER = (
    "The client the row is for, named by a developer or staff (required from them: the client's uuid, or on "
    "`signed` models its public id). A client leaves it out: its own comes from `CLIENT-UUID` (a value sent is "
    "ignored)."
)


def _client_from_header(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body whose ``client`` a client's ``CLIENT-UUID`` supplies: optional, saying so."""
    schema["required"] = [name for name in schema.get("required", []) if name != "client"]
    schema["properties"]["client"] = {**schema["properties"]["client"], "description": _CLIENT_FROM_HEADER}
    return schema


class ModelUpdateSchema(OpenApiSerializerExtension):
    """An update: ``client`` optional in the body (``CLIENT-UUID`` supplies a client's own); as answered, a
    client's own updates come without ``applied_aggregate`` (developers' only)."""

    target_class = "fma_django_connectors.api.serializers.ModelUpdateSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super().map_serializer(auto_schema, direction)
        if direction == "request":
            return _client_from_header(schema)
        schema["required"] = [name for name in schema.get("required", []) if name != "applied_aggregate"]
        applied = schema["properties"]["applied_aggregate"]
        applied["description"] = "The aggregate that used the update; absent when a client reads its own."
        return schema


class ClientAggregateScoreSchema(OpenApiSerializerExtension):
    """A score: ``client`` optional in the body (``CLIENT-UUID`` supplies a client's own)."""

    target_class = "fma_django_connectors.api.serializers.ClientAggregateScoreSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super().map_serializer(auto_schema, direction)
        return _client_from_header(schema) if direction == "request" else schema


# --- Operations drf-spectacular cannot infer ---------------------------------------------------------


def _described(view_class: type, model: type[Model], **operations: Any) -> type:
    """A subclass of ``view_class`` for the schema only, its actions described by ``operations``.

    Its queryset is ``model``'s, empty: the real one is scoped to a caller, and the schema has none.
    """

    def get_queryset(self: Any) -> Any:
        return model.objects.none()

    attributes = {"get_queryset": get_queryset, "__module__": view_class.__module__}
    return extend_schema_view(**operations)(type(view_class.__name__, (view_class,), attributes))


class FederatedModelViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.FederatedModelViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            FederatedModel,
            register_client=extend_schema(
                request=enrollment.RegisterClientSerializer,
                responses={200: _REGISTERED, 409: _KEY_TAKEN},
                description="Anyone: without `CLIENT-UUID` makes a new client and registers it; with one, "
                "registers that client (idempotent). The body is optional: `enrollment_token` on `invite` "
                'models; `public_key` for a new client of a `client_auth: "signed"` model (required there), '
                "whose later requests it signs; such a registration is signed by that key (see the "
                "`signatureInput` security scheme), and a key already another client's is a 409. A registration "
                "the model's rules refuse answers as an unknown model id (404).",
            ),
            add_client=extend_schema(
                request=enrollment.NewClientSerializer,
                responses={201: _REGISTERED, 409: _KEY_TAKEN},
                description="The model's developer adds a new client (the way into a `closed` model) and hands "
                'it the uuid; `public_key` is required on a `client_auth: "signed"` model (a key already another '
                "client's: 409).",
            ),
            get_latest_aggregate=_weights_route(
                _document_or_weights(_component("ModelAggregate")),
                "The newest aggregate, or `{}` when there is none; with `?format=json` its weights.",
                _AGGREGATE_HEADER,
            ),
            get_current_artifact=_weights_route(
                _document_or_weights(_component("ModelArtifact")),
                "The current artifact, or `{}` when there is none; with `?format=json` its weights.",
                _ARTIFACT_HEADER,
            ),
            get_latest_model=_weights_route(
                _document_or_weights(_LATEST_MODEL),
                "The newest aggregate's weights, else the current artifact's (`aggregate` null), else `{}`; "
                "with `?format=json` the weights alone.",
                _AGGREGATE_HEADER,
            ),
        )


class ModelUpdateViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.ModelUpdateViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            ModelUpdate,
            download_data=_weights_route(_WEIGHTS_JSON, "The update's weights (JSON by default)."),
        )


class ModelAggregateViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.ModelAggregateViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            ModelAggregate,
            publish_aggregate=extend_schema(
                request=serializers.PublishAggregateSerializer,
                responses={201: serializers.ModelArtifactSerializer},
                description="Copies the aggregate's result into a new artifact of `version` and makes it the "
                "model's `current_artifact`. A version the model already has: 400.",
            ),
            result=_weights_route(_WEIGHTS_JSON, "The aggregate's weights (JSON by default).", _AGGREGATE_HEADER),
        )


class ModelArtifactViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.ModelArtifactViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            ModelArtifact,
            values=_weights_route(_WEIGHTS_JSON, "The artifact's weights (JSON by default).", _ARTIFACT_HEADER),
        )


class ClientAggregateScoreViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.ClientAggregateScoreViewSet"

    def view_replacement(self) -> type:
        return _described(self.target_class, ClientAggregateScore)


class UploadViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.api.views.UploadViewSet"

    def view_replacement(self) -> type:
        made = OpenApiResponse(
            serializers.ModelUpdateSerializer,
            description="The update (or, for `initial_model` and `artifact`, the artifact) made from the bytes.",
        )
        return _described(
            self.target_class,
            Upload,
            create=extend_schema(
                request=serializers.UploadSerializer,
                responses={201: _UPLOAD_TARGET},
                description="Step 1 of 3: checks every rule that does not need the bytes; answers where to "
                "`PUT` exactly `size` bytes.",
            ),
            complete=extend_schema(
                request=None,
                responses={201: made, 200: made},
                description="Step 3 of 3: checks the bytes and makes the update or artifact (201); completing "
                "again answers the same one (200). Bytes not arrived yet: 409; upload expired: 410.",
            ),
        )


# --- Error responses ---------------------------------------------------------------------------------

ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "description": "An error of the whole request.",
        "example": {"detail": "You do not have permission to perform this action."},
    },
    "FieldErrors": {
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "description": "Each refused field with its message(s); `detail` for what concerns no single field.",
        "example": {"aggregator": ["Unknown aggregator 'x'; registered: avg_values_if_data, ..."]},
    },
}
# The 401 answers a client may get, as named examples of every 401 response.
_UNAUTHORIZED_EXAMPLES: dict[str, tuple[str, str]] = {
    "NotAuthenticated": ("No credentials on a protected route.", NotAuthenticated.default_detail),
    "UnknownClientUuid": ("A well-formed CLIENT-UUID that no client has.", authentication.UNKNOWN_UUID),
    "MalformedClientUuid": ("A CLIENT-UUID that is not a uuid.", '"not-a-uuid" is not a valid UUID.'),
    "IncompleteSignature": ("Signature-Input without Signature, or the reverse.", signatures.INCOMPLETE),
    "MalformedSignature": (
        "Signature-Input or Signature that is not one RFC 8941 dictionary member with created, nonce and keyid.",
        signatures.MALFORMED,
    ),
    "StaleSignature": (f"created more than {signatures.MAX_SKEW_SECONDS} s away.", signatures.STALE),
    "MalformedNonce": ("A nonce of the wrong form.", signatures.MALFORMED_NONCE),
    "WrongAlgorithm": ("An alg other than ed25519.", signatures.WRONG_ALGORITHM),
    "UncoveredComponents": (
        "A signature leaving out a required component (content-digest is required with a body).",
        signatures.uncovered([*signatures.CLIENT_COMPONENTS, "content-digest"]),
    ),
    "WrongKeyId": ("A client's keyid that is not its uuid.", signatures.wrong_key_id(authentication.CLIENT_KEY_ID)),
    "WrongRegistrationKeyId": (
        "A registration's keyid that is not a public key.",
        signatures.wrong_key_id(authentication.REGISTRATION_KEY_ID),
    ),
    "InvalidContentDigest": ("A Content-Digest malformed, not sha-256, or not the body's.", signatures.DIGEST_INVALID),
    "InvalidSignature": (
        "A signature that does not verify with the client's key, or a client without a key.",
        signatures.INVALID,
    ),
    "ReplayedNonce": ("A nonce the key has already used.", authentication.REPLAYED_NONCE),
    "KeyNotProven": (
        "A new client's public_key, and the registration not signed by it.",
        authentication.KEY_UNPROVEN,
    ),
    "SignatureRequired": (
        'A registered client\'s unsigned request on a `client_auth: "signed"` model.',
        SIGNATURE_REQUIRED,
    ),
}
EXAMPLE_COMPONENTS: dict[str, dict[str, Any]] = {
    name: {"summary": summary, "value": {"detail": str(detail)}}
    for name, (summary, detail) in _UNAUTHORIZED_EXAMPLES.items()
}
_WRITES = {"post", "put", "patch"}
# Status → (description, component); ``_error_applies`` says which operations may answer it.
_ERRORS: dict[str, tuple[str, str]] = {
    "400": ("A field or the body is refused; each field is named with its message.", "FieldErrors"),
    "401": (
        "No credentials; a `CLIENT-UUID` that is unknown or malformed; or a client's signature incomplete, "
        'malformed, stale, wrong, replayed, or missing on a `client_auth: "signed"` model (see the examples).',
        "ErrorDetail",
    ),
    "403": ("Authenticated, but not allowed (e.g. a client not registered to the model).", "ErrorDetail"),
    "404": ("Not found, or outside the caller's scope; in a list, a `page` past the last one.", "ErrorDetail"),
    "409": ("The upload's bytes have not arrived: send them, then complete again.", "ErrorDetail"),
    "410": ("The upload has expired, its bytes removed: start a new one.", "ErrorDetail"),
    "413": ("The body is larger than a request may carry, or the answer than a response may.", "ErrorDetail"),
    "415": ("The body is not JSON.", "ErrorDetail"),
    "429": ("Too many requests: wait `Retry-After` seconds.", "ErrorDetail"),
    "500": ("A setting of the deployment is wrong or missing; `detail` names it.", "ErrorDetail"),
    "503": ("A service the API depends on is unavailable; `detail` names it. Safe to retry.", "ErrorDetail"),
}


def _error_applies(status_code: str, method: str, path: str, operation: dict[str, Any]) -> bool:
    takes_body = method in _WRITES and "requestBody" in operation
    query = {parameter["name"] for parameter in operation.get("parameters", []) if parameter.get("in") == "query"}
    anonymous = {} in operation.get("security", [{}])
    rules = {
        "400": takes_body or bool(query) or method in _WRITES,
        # Open operations as well: credentials that are sent are checked (a malformed or unknown CLIENT-UUID,
        # an unsigned request of a client on a `signed` model).
        "401": True,
        "403": not anonymous or "{id}" in path,
        # DRF's paginator answers a page past the last one (or `page=0`) with 404 {"detail": "Invalid page."}.
        "404": "{id}" in path or "page" in query,
        "409": path.endswith("/complete/"),
        "410": path.endswith("/complete/"),
        "413": True,
        "415": takes_body,
        "429": True,
        "500": True,
        "503": True,
    }
    return rules[status_code]


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error responses of every operation, with their JSON shape."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(ERROR_COMPONENTS)
    components.setdefault("examples", {}).update(EXAMPLE_COMPONENTS)
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            for status_code, (description, component) in _ERRORS.items():
                if status_code in responses or not _error_applies(status_code, method, path, operation):
                    continue
                response: dict[str, Any] = {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                }
                if status_code == "401":
                    response["content"]["application/json"]["examples"] = {
                        name: {"$ref": f"#/components/examples/{name}"} for name in EXAMPLE_COMPONENTS
                    }
                if status_code == "429":
                    response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
                responses[status_code] = response
    return result
