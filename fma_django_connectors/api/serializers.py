"""(De)serialisation and validation of API v1 documents; no writes happen here (see ``services``)."""

from __future__ import annotations

import math
from typing import Any

import orjson
from django.db.models.fields.files import FieldFile
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from fma_core.algorithms import aggregators, requirements, validate_aggregator_args, validate_requirement_args
from fma_core.exceptions import FMAError, InvalidWeightsError
from fma_core.serialization import Weights, parse_weights
from fma_django_connectors import client_ids, selectors
from fma_django_connectors.access.authentication import request_actor
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.exceptions import ResponseTooLargeError
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
    Upload,
)
from fma_django_connectors.schemas import check_document, schema_problem
from fma_django_connectors.storage.downloads import weights_json, weights_url

# Context ``weights_as_urls`` of the serializers with weights: lists always carry URLs; the answers of
# writes (completing an upload, publishing an aggregate) carry one when the weights do not fit a response,
# since the write has happened and must not be answered with an error.
WEIGHTS_AS_URLS_ALWAYS = "always"
WEIGHTS_AS_URLS_BEYOND_LIMIT = "beyond_limit"


class WeightsField(serializers.Field):
    """Weights: in, the JSON document as sent (the serializer parses it once); out, the stored file as JSON.

    ``route`` names the route serving the row's weights: its absolute URL stands for the weights as the
    context's ``weights_as_urls`` says, and a 413 that refuses weights too large for JSON points at it.
    """

    def __init__(self, *, route: str | None = None, **kwargs: Any) -> None:
        self.route = route
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: FieldFile) -> Any:
        request = self.context.get("request")
        if request is None or self.route is None:
            return weights_json(value)
        url = weights_url(request, route=self.route, pk=value.instance.pk)
        as_urls = self.context.get("weights_as_urls")
        if as_urls == WEIGHTS_AS_URLS_ALWAYS:
            return url
        try:
            return weights_json(value, url=url)
        except ResponseTooLargeError:
            if as_urls == WEIGHTS_AS_URLS_BEYOND_LIMIT:
                return url
            raise


def _parse_weights(value: Any) -> Weights:
    try:
        return parse_weights(value)
    except InvalidWeightsError as error:
        raise serializers.ValidationError(str(error)) from None


def _valid_schema(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, dict | bool):
        raise serializers.ValidationError("must be a JSON Schema (an object or a boolean)")
    problem = schema_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)
    return value


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id looked up among what the caller may name (``selector(actor=...)``); others do not exist."""

    def __init__(self, *, selector: Any, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.selector(actor=request_actor(self.context["request"]))


class ClientField(serializers.PrimaryKeyRelatedField):
    """A client a developer names: by uuid, or by the public id a ``signed`` model shows (``client_ids``).

    Whether a public id suits the model it is named for is the serializer's check (``client_named_for``),
    once the model is known.
    """

    def to_internal_value(self, data: Any) -> Any:
        if client_ids.is_public_id(data):
            client = client_ids.client_with_public_id(self.get_queryset(), data)
            if client is None:
                self.fail("does_not_exist", pk_value=data)
            return client
        return super().to_internal_value(data)


class ScopedClientField(ClientField, ScopedPrimaryKeyRelatedField):
    """A ``ClientField`` among the clients the caller may name (``selectors.client_list``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(selector=selectors.client_list, **kwargs)


def _refuse_public_ids(names: list[Any], *, signed: bool, field: str) -> None:
    """Refuse clients named by public id for a ``uuid`` model, as unknown clients: an answer about a ``uuid``
    model's client shows its uuid, which the public id must not lead to (``client_ids``)."""
    public_ids = [name for name in names if client_ids.is_public_id(name)]
    if public_ids and not signed:
        message = ClientField.default_error_messages["does_not_exist"].format(pk_value=public_ids[0])
        raise serializers.ValidationError({field: [message]})


def client_named_for(serializer: serializers.Serializer, model: FederatedModel) -> None:
    """Refuse a ``client`` the caller named by public id for ``model`` unless it is ``signed``."""
    if serializer.fields["client"].read_only:  # a client's own, from CLIENT-UUID
        return
    _refuse_public_ids(
        [serializer.initial_data.get("client")], signed=client_ids.model_is_signed(model), field="client"
    )


class DeveloperClientLabel(serializers.Serializer):
    """A row naming its ``client`` as developers and staff see it: by public id on ``signed`` models.

    A client reading its own rows sees its own uuid. Subclasses say which model the row belongs to; their
    views select it along (no query per row).
    """

    def client_model(self, instance: Any) -> FederatedModel:  # pragma: no cover
        raise NotImplementedError

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and isinstance(request_actor(request), Client):
            return data
        if data.get("client") is not None:
            data["client"] = client_ids.client_label(data["client"], model=self.client_model(instance))
        return data


class FederatedModelSerializer(serializers.ModelSerializer):
    """A federated model.

    ``developer`` defaults to the caller; naming another developer is refused with 403 unless the
    caller is staff. ``initial_model`` (write-only, on creation only) is stored as artifact version
    1.0.0. ``aggregator``/``requirement`` must be registered names and their ``*_args`` must suit them.
    """

    developer = serializers.PrimaryKeyRelatedField(queryset=selectors.developer_all(), required=False)
    # Clients of the caller's models (staff: any), others answered as unknown uuids; a public id names a
    # client of a signed model.
    clients = ScopedClientField(many=True, required=False)
    initial_model = WeightsField(write_only=True, required=False)

    class Meta:
        model = FederatedModel
        fields = [
            "id",
            "name",
            "developer",
            "clients",
            "current_artifact",
            "aggregator",
            "aggregator_args",
            "requirement",
            "requirement_args",
            "update_schema",
            "client_agg_results_schema",
            "furthest_base_agg",
            "allow_aggregation",
            "registration",
            "client_auth",
            "update_max_norm",
            "created_on",
            "last_modified",
            "initial_model",
        ]
        read_only_fields = ["current_artifact", "created_on", "last_modified"]

    def to_representation(self, instance: FederatedModel) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["clients"] = [client_ids.client_label(client, model=instance) for client in data["clients"]]
        return data

    def validate_client_auth(self, value: str) -> str:
        instance = self.instance
        if (
            instance is not None
            and client_ids.model_is_signed(instance)
            and value != FederatedModel.ClientAuth.SIGNED
            and instance.clients.exists()
        ):
            raise serializers.ValidationError(
                "A signed model with clients stays signed: its clients joined with their keys, and on a uuid model "
                "their uuids would be credentials shown to its developer. Make a new model instead."
            )
        return value

    def validate_developer(self, value: Any) -> Any:
        user = self.context["request"].user
        if value != user and not user.is_staff:
            raise PermissionDenied("Only staff may name another developer than themselves.")
        return value

    def validate_aggregator(self, value: str) -> str:
        if value not in aggregators:
            raise serializers.ValidationError(
                f"Unknown aggregator {value!r}; registered: {', '.join(aggregators.names())}"
            )
        return value

    def validate_requirement(self, value: str) -> str:
        if value and value not in requirements:
            raise serializers.ValidationError(
                f"Unknown requirement {value!r}; registered: {', '.join(requirements.names())} (or blank)"
            )
        return value

    def validate_requirement_args(self, value: Any) -> Any:
        # Upstream's example script posts requirement_args as a JSON string ("3", "[3]"); upstream kept what the
        # string holds. A string holding a list, an object, a number or null is taken as that value; any
        # other string is left for the requirement's check to refuse.
        if not isinstance(value, str):
            return value
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if parsed is None or (isinstance(parsed, list | dict | int | float) and not isinstance(parsed, bool)):
            return parsed
        return value

    def validate_update_schema(self, value: Any) -> Any:
        return _valid_schema(value)

    def validate_client_agg_results_schema(self, value: Any) -> Any:
        return _valid_schema(value)

    def validate_update_max_norm(self, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise serializers.ValidationError(f"must be a positive finite number or null, got {value!r}")
        return value

    def validate_initial_model(self, value: Any) -> Weights:
        if self.instance is not None:
            raise serializers.ValidationError(
                "initial_model can only be given when creating a model; publish an aggregate to change its weights"
            )
        return _parse_weights(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(field: str) -> Any:
            return attrs.get(field, getattr(self.instance, field, None))

        if "clients" in attrs:
            signed = current("client_auth") == FederatedModel.ClientAuth.SIGNED
            _refuse_public_ids(list(self.initial_data["clients"]), signed=signed, field="clients")
        checks = (
            ("aggregator_args", validate_aggregator_args, current("aggregator")),
            ("requirement_args", validate_requirement_args, current("requirement")),
        )
        for field, check, name in checks:
            if not name:
                continue
            try:
                check(name, current(field))
            except FMAError as error:
                raise serializers.ValidationError({field: [str(error)]}) from None
        return attrs


# The column's range on PostgreSQL, so that SQLite (up to 2**63 - 1) accepts no more.
_NUM_EXAMPLES_KWARGS = {"max_value": 2**31 - 1}


class UpdateTargetFields(serializers.Serializer):
    """What an update names besides its weights, each looked up in the caller's scope.

    Shared by ``POST /api/v1/model_updates/`` and ``POST /api/v1/uploads/``, so both refuse the same ids.
    """

    # An id outside the caller's scope is refused as an unknown one, so that no message confirms it exists.
    client = ScopedClientField()
    federated_model = ScopedPrimaryKeyRelatedField(selector=selectors.model_named)
    base_aggregate = ScopedPrimaryKeyRelatedField(selector=selectors.aggregate_list, allow_null=True, required=False)


class ModelUpdateSerializer(DeveloperClientLabel, UpdateTargetFields, serializers.ModelSerializer):
    """A model update as developers and staff see it; creating one, a developer names its ``client``.

    ``data`` must match the model's ``update_schema`` when one is set, then be valid weights.
    """

    data = WeightsField(route="model-update-data")

    class Meta:
        model = ModelUpdate
        fields = [
            "id",
            "client",
            "federated_model",
            "data",
            "status",
            "base_aggregate",
            "applied_aggregate",
            "num_examples",
            "status_reason",
            "created_on",
        ]
        read_only_fields = ["status", "applied_aggregate", "status_reason", "created_on"]
        extra_kwargs = {"num_examples": _NUM_EXAMPLES_KWARGS}

    def client_model(self, instance: ModelUpdate) -> FederatedModel:
        return instance.federated_model

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        client_named_for(self, attrs["federated_model"])
        check_document(attrs["data"], attrs["federated_model"].update_schema, field="data")
        try:
            attrs["data"] = parse_weights(attrs["data"])
        except InvalidWeightsError as error:
            raise serializers.ValidationError({"data": [str(error)]}) from None
        return attrs


class ClientModelUpdateSerializer(ModelUpdateSerializer):
    """A model update as its client sees it: ``client`` comes from ``CLIENT-UUID``, no ``applied_aggregate``."""

    client = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(ModelUpdateSerializer.Meta):
        fields = [field for field in ModelUpdateSerializer.Meta.fields if field != "applied_aggregate"]
        read_only_fields = ["status", "status_reason", "created_on"]


class ModelUpdateChangeSerializer(DeveloperClientLabel, serializers.ModelSerializer):
    """Changing an update after creation: only its ``status``."""

    client = ClientField(read_only=True)
    data = WeightsField(route="model-update-data", read_only=True)

    class Meta:
        model = ModelUpdate
        fields = ModelUpdateSerializer.Meta.fields
        read_only_fields = [field for field in ModelUpdateSerializer.Meta.fields if field != "status"]

    def client_model(self, instance: ModelUpdate) -> FederatedModel:
        return instance.federated_model


class ModelAggregateSerializer(serializers.ModelSerializer):
    """An aggregate with its ``result`` inlined as weights JSON."""

    result = WeightsField(route="model-aggregate-result", read_only=True)

    class Meta:
        model = ModelAggregate
        fields = ["id", "federated_model", "parent", "result", "validation_score", "created_on"]
        read_only_fields = fields


class ModelArtifactSerializer(serializers.ModelSerializer):
    """An artifact with its ``values`` inlined as weights JSON."""

    values = WeightsField(route="model-artifact-values", read_only=True)

    class Meta:
        model = ModelArtifact
        fields = ["id", "values", "version", "federated_model", "created_on"]
        read_only_fields = fields


class PublishAggregateSerializer(serializers.Serializer):
    """Body of ``publish_aggregate``: the version of the new artifact."""

    version = serializers.CharField(max_length=100)


class ClientAggregateScoreSerializer(DeveloperClientLabel, serializers.ModelSerializer):
    """A client's score of an aggregate; a developer names the ``client`` (by public id on ``signed`` models).

    ``validation_results`` must match the model's ``client_agg_results_schema`` when one is set.
    """

    aggregate = ScopedPrimaryKeyRelatedField(selector=selectors.aggregate_list)
    client = ScopedClientField()

    class Meta:
        model = ClientAggregateScore
        fields = ["id", "aggregate", "client", "validation_results", "created_on"]
        read_only_fields = ["created_on"]
        # One score per (aggregate, client) is the service's rule (a 400 naming both), not a generic validator.
        validators: list[Any] = []

    def client_model(self, instance: ClientAggregateScore) -> FederatedModel:
        return instance.aggregate.federated_model

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        client_named_for(self, attrs["aggregate"].federated_model)
        schema = attrs["aggregate"].federated_model.client_agg_results_schema
        check_document(attrs["validation_results"], schema, field="validation_results")
        return attrs


class ClientClientAggregateScoreSerializer(ClientAggregateScoreSerializer):
    """A score as its client sends it: ``client`` comes from ``CLIENT-UUID`` (any ``client`` sent is ignored)."""

    client = serializers.PrimaryKeyRelatedField(read_only=True)


_SHA256_HELP = "Must be the SHA-256 digest of the bytes: 64 hexadecimal digits."


class UploadSerializer(UpdateTargetFields, serializers.ModelSerializer):
    """Body of ``POST /api/v1/uploads/``: what the bytes will be, checked before any byte moves.

    ``purpose`` ``update`` (default) takes the fields of ``POST /api/v1/model_updates/`` except ``data``,
    with the same scoping (a developer names ``client``); ``initial_model`` and ``artifact`` (with
    ``version``) are for developers only. ``size`` is at most ``FMA_UPLOAD_MAX_BYTES``, and at most
    ``FMA_UPLOAD_JSON_MAX_BYTES`` for ``json``.
    """

    client = ClientField(queryset=selectors.client_all(), required=False)
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False, error_messages={"invalid": _SHA256_HELP})

    class Meta:
        model = Upload
        fields = [
            "purpose",
            "format",
            "size",
            "sha256",
            "federated_model",
            "client",
            "base_aggregate",
            "num_examples",
            "version",
        ]
        extra_kwargs = {
            "purpose": {"required": False, "default": Upload.Purpose.UPDATE},
            "num_examples": _NUM_EXAMPLES_KWARGS,
            "size": {"min_value": 1},
        }

    def validate_size(self, value: int) -> int:
        limit = fma_settings.FMA_UPLOAD_MAX_BYTES
        if value > limit:
            raise serializers.ValidationError(
                f"{value} bytes is more than the {limit} bytes an upload may have (FMA_UPLOAD_MAX_BYTES)."
            )
        return value

    def validate_sha256(self, value: str) -> str:
        return value.lower()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        json_limit = fma_settings.FMA_UPLOAD_JSON_MAX_BYTES
        if attrs["format"] == Upload.Format.JSON and attrs["size"] > json_limit:
            raise serializers.ValidationError(
                {
                    "size": [
                        f"{attrs['size']} bytes is more than the {json_limit} bytes a json upload may have "
                        "(FMA_UPLOAD_JSON_MAX_BYTES): JSON is parsed whole in memory; upload large weights as "
                        "safetensors or npz."
                    ]
                }
            )
        purpose = attrs["purpose"]
        caller_is_client = isinstance(request_actor(self.context["request"]), Client)
        if purpose != Upload.Purpose.UPDATE:
            if caller_is_client:
                raise PermissionDenied(f"Only developers may upload an {purpose}; clients upload updates.")
            if purpose == Upload.Purpose.ARTIFACT and not attrs.get("version"):
                raise serializers.ValidationError({"version": ["An artifact upload needs a version."]})
            return attrs
        if not caller_is_client:
            if "client" not in attrs:
                raise serializers.ValidationError({"client": [serializers.Field.default_error_messages["required"]]})
            client_named_for(self, attrs["federated_model"])
        schema = attrs["federated_model"].update_schema
        if schema is not None and attrs["format"] != Upload.Format.JSON:
            raise serializers.ValidationError(
                {
                    "format": [
                        f"Model {attrs['federated_model'].pk} has an update_schema, a JSON Schema of the JSON document:"
                        " its updates are uploaded as json (checked against it), not as binary tensors."
                    ]
                }
            )
        return attrs
