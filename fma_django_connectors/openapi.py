"""The OpenAPI description of the API, generated from the views by drf-spectacular (``/api/schema/``).

The views stay declarative: what drf-spectacular cannot infer from them (the answers of the custom actions,
the weights formats of ``?format=``, the ``CLIENT-UUID`` scheme, the error bodies) is said here, by
extensions that drf-spectacular finds by the import path of the class they describe, and by one
postprocessing hook that documents the error responses every operation may give. ``apps.ready()`` imports
this module so that the extensions are registered before the first schema is generated.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
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

from fma_django_connectors import downloads, serializers
from fma_django_connectors.models import (
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
    Upload,
)

# --- Security schemes --------------------------------------------------------------------------------


class ClientUUIDScheme(OpenApiAuthenticationExtension):
    """``CLIENT-UUID: <uuid>``: the header a federated client authenticates with."""

    target_class = "fma_django_connectors.authentication.ClientUUIDAuthentication"
    name = "clientUuid"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "CLIENT-UUID",
            "description": "A federated client's uuid, as answered by `register_client`. Unknown: 401 "
            '`{"detail": "Invalid UUID"}`; malformed: 401 `{"detail": "\\"<value>\\" is not a valid UUID."}`.',
        }


class GuardedBasicScheme(BasicScheme):
    """HTTP Basic, whose failed passwords count towards the login brake (``throttling``)."""

    target_class = "fma_django_connectors.authentication.GuardedBasicAuthentication"


# --- Weights -----------------------------------------------------------------------------------------

_WEIGHTS_DESCRIPTION = (
    "Weights as JSON: one numeric array of any rank, or a list of layers of different shapes (named tensors "
    "render as the list of their arrays). In list responses, and in a write's answer when the weights do not "
    "fit a response, the absolute URL of the route that serves them (`?format=safetensors|npz|json`)."
)
_WEIGHTS_DOCUMENT = {"type": "array", "items": {}, "description": "nested lists of numbers"}


class WeightsFieldSchema(OpenApiSerializerFieldExtension):
    """``WeightsField``: a JSON document of weights, or the URL that serves them."""

    target_class = "fma_django_connectors.serializers.WeightsField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "request":
            return {**_WEIGHTS_DOCUMENT, "description": _WEIGHTS_DESCRIPTION}
        url = {"type": "string", "format": "uri", "description": "URL serving the weights"}
        return {"oneOf": [_WEIGHTS_DOCUMENT, url], "description": _WEIGHTS_DESCRIPTION}


class ClientFieldSchema(OpenApiSerializerFieldExtension):
    """``ClientField``: a client as developers see and name it (``client_ids``)."""

    target_class = "fma_django_connectors.serializers.ClientField"
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
_LATEST_MODEL = inline_serializer(
    "LatestModel",
    fields={
        "values": drf_serializers.JSONField(help_text=_WEIGHTS_DESCRIPTION),
        "aggregate": drf_serializers.IntegerField(allow_null=True, help_text="Newest aggregate's id, or null."),
    },
)
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
    target_class = "fma_django_connectors.views.FederatedModelViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            FederatedModel,
            register_client=extend_schema(
                request=None,
                responses={200: _REGISTERED},
                description="Anyone: without `CLIENT-UUID` makes a new client and registers it; with one, "
                "registers that client (idempotent).",
            ),
            get_latest_aggregate=_weights_route(
                serializers.ModelAggregateSerializer,
                "The newest aggregate, or `{}` when there is none.",
                _AGGREGATE_HEADER,
            ),
            get_current_artifact=_weights_route(
                serializers.ModelArtifactSerializer,
                "The current artifact, or `{}` when there is none.",
                _ARTIFACT_HEADER,
            ),
            get_latest_model=_weights_route(
                _LATEST_MODEL,
                "The newest aggregate's weights, else the current artifact's (`aggregate` null), else `{}`.",
                _AGGREGATE_HEADER,
            ),
        )


class ModelUpdateViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.views.ModelUpdateViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            ModelUpdate,
            download_data=_weights_route(_WEIGHTS_JSON, "The update's weights (JSON by default)."),
        )


class ModelAggregateViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.views.ModelAggregateViewSet"

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
    target_class = "fma_django_connectors.views.ModelArtifactViewSet"

    def view_replacement(self) -> type:
        return _described(
            self.target_class,
            ModelArtifact,
            values=_weights_route(_WEIGHTS_JSON, "The artifact's weights (JSON by default).", _ARTIFACT_HEADER),
        )


class ClientAggregateScoreViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.views.ClientAggregateScoreViewSet"

    def view_replacement(self) -> type:
        return _described(self.target_class, ClientAggregateScore)


class UploadViews(OpenApiViewExtension):
    target_class = "fma_django_connectors.views.UploadViewSet"

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
_WRITES = {"post", "put", "patch"}
# Status → (description, component); ``_error_applies`` says which operations may answer it.
_ERRORS: dict[str, tuple[str, str]] = {
    "400": ("A field or the body is refused; each field is named with its message.", "FieldErrors"),
    "401": ("No credentials, or a `CLIENT-UUID` that is unknown or malformed.", "ErrorDetail"),
    "403": ("Authenticated, but not allowed (e.g. a client not registered to the model).", "ErrorDetail"),
    "404": ("Not found, or outside the caller's scope.", "ErrorDetail"),
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
    has_params = any(parameter.get("in") == "query" for parameter in operation.get("parameters", []))
    anonymous = {} in operation.get("security", [{}])
    rules = {
        "400": takes_body or has_params or method in _WRITES,
        "401": not anonymous,
        "403": not anonymous or "{id}" in path,
        "404": "{id}" in path,
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
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_COMPONENTS)
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
                if status_code == "429":
                    response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
                responses[status_code] = response
    return result
