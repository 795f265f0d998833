"""(De)serialisation and validation of API v1 documents; no writes happen here (see ``services``)."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
from django.db.models.fields.files import FieldFile
from referencing.exceptions import Unresolvable
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from fma_core.algorithms import aggregators, requirements, validate_aggregator_args, validate_requirement_args
from fma_core.exceptions import FMAError, InvalidWeightsError
from fma_core.serialization import Weights, parse_weights, weights_to_jsonable
from fma_django_connectors import selectors
from fma_django_connectors.authentication import request_actor
from fma_django_connectors.exceptions import SchemaMismatchError
from fma_django_connectors.models import (
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)
from fma_django_connectors.weights_storage import weights_load


class WeightsField(serializers.Field):
    """Weights: in, the JSON document as sent (the serializer parses it once); out, the stored file as JSON."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: FieldFile) -> Any:
        return weights_to_jsonable(weights_load(value))


def _parse_weights(value: Any) -> Weights:
    try:
        return parse_weights(value)
    except InvalidWeightsError as error:
        raise serializers.ValidationError(str(error)) from None


def _check_document(document: Any, schema: Any, *, field: str) -> None:
    """Raise ``SchemaMismatchError`` (400 ``{field: "<field> did not match the required schema: ..."}``)."""
    if schema is None:
        return
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as error:
        raise SchemaMismatchError(f"{field} did not match the required schema: {error.message}", field=field) from None
    except jsonschema.SchemaError as error:
        # The API refuses such schemas, but the admin (or the database) can hold anything.
        message = f"the model's schema for {field} cannot be used: not a valid JSON Schema: {error.message}"
        raise SchemaMismatchError(message, field=field) from None
    except Unresolvable as error:
        raise SchemaMismatchError(f"the model's schema for {field} cannot be used: {error}", field=field) from None


def _valid_schema(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, dict | bool):
        raise serializers.ValidationError("must be a JSON Schema (an object or a boolean)")
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as error:
        raise serializers.ValidationError(f"not a valid JSON Schema: {error.message}") from None
    return value


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id looked up among what the caller may name (``selector(actor=...)``); others do not exist."""

    def __init__(self, *, selector: Any, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.selector(actor=request_actor(self.context["request"]))


class FederatedModelSerializer(serializers.ModelSerializer):
    """A federated model.

    ``developer`` defaults to the caller; naming another developer is refused with 403 unless the
    caller is staff. ``initial_model`` (write-only, on creation only) is stored as artifact version
    1.0.0. ``aggregator``/``requirement`` must be registered names and their ``*_args`` must suit them.
    """

    developer = serializers.PrimaryKeyRelatedField(queryset=selectors.developer_all(), required=False)
    clients = serializers.PrimaryKeyRelatedField(many=True, queryset=selectors.client_all(), required=False)
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
            "update_max_norm",
            "created_on",
            "last_modified",
            "initial_model",
        ]
        read_only_fields = ["current_artifact", "created_on", "last_modified"]

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


class ModelUpdateSerializer(serializers.ModelSerializer):
    """A model update as developers and staff see it; creating one, a developer names its ``client``.

    ``data`` must match the model's ``update_schema`` when one is set, then be valid weights.
    """

    client = serializers.PrimaryKeyRelatedField(queryset=selectors.client_all())
    federated_model = ScopedPrimaryKeyRelatedField(selector=selectors.model_targets)
    base_aggregate = ScopedPrimaryKeyRelatedField(selector=selectors.aggregate_targets, allow_null=True, required=False)
    data = WeightsField()

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
        # The column's range on PostgreSQL, so that SQLite (up to 2**63 - 1) accepts no more.
        extra_kwargs = {"num_examples": {"max_value": 2**31 - 1}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _check_document(attrs["data"], attrs["federated_model"].update_schema, field="data")
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


class ModelUpdateChangeSerializer(serializers.ModelSerializer):
    """Changing an update after creation: only its ``status``."""

    client = serializers.PrimaryKeyRelatedField(read_only=True)
    data = WeightsField(read_only=True)

    class Meta:
        model = ModelUpdate
        fields = ModelUpdateSerializer.Meta.fields
        read_only_fields = [field for field in ModelUpdateSerializer.Meta.fields if field != "status"]


class ModelAggregateSerializer(serializers.ModelSerializer):
    """An aggregate with its ``result`` inlined as weights JSON."""

    result = WeightsField(read_only=True)

    class Meta:
        model = ModelAggregate
        fields = ["id", "federated_model", "parent", "result", "validation_score", "created_on"]
        read_only_fields = fields


class ModelArtifactSerializer(serializers.ModelSerializer):
    """An artifact with its ``values`` inlined as weights JSON."""

    values = WeightsField(read_only=True)

    class Meta:
        model = ModelArtifact
        fields = ["id", "values", "version", "federated_model", "created_on"]
        read_only_fields = fields


class PublishAggregateSerializer(serializers.Serializer):
    """Body of ``publish_aggregate``: the version of the new artifact."""

    version = serializers.CharField(max_length=100)


class ClientAggregateScoreSerializer(serializers.ModelSerializer):
    """A client's score of an aggregate; a developer names the ``client``.

    ``validation_results`` must match the model's ``client_agg_results_schema`` when one is set.
    """

    aggregate = ScopedPrimaryKeyRelatedField(selector=selectors.aggregate_targets)
    client = serializers.PrimaryKeyRelatedField(queryset=selectors.client_all())

    class Meta:
        model = ClientAggregateScore
        fields = ["id", "aggregate", "client", "validation_results", "created_on"]
        read_only_fields = ["created_on"]
        # One score per (aggregate, client) is the service's rule (a 400 naming both), not a generic validator.
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        schema = attrs["aggregate"].federated_model.client_agg_results_schema
        _check_document(attrs["validation_results"], schema, field="validation_results")
        return attrs


class ClientClientAggregateScoreSerializer(ClientAggregateScoreSerializer):
    """A score as its client sends it: ``client`` comes from ``CLIENT-UUID`` (any ``client`` sent is ignored)."""

    client = serializers.PrimaryKeyRelatedField(read_only=True)
