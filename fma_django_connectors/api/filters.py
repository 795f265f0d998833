"""Query-string filters of API v1 (``?federated_model=``, ``?status=``, ...).

Related ids are plain whole numbers, so that filtering by an id outside the caller's scope gives an
empty list instead of revealing whether the object exists.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as filters

from fma_django_connectors import client_ids
from fma_django_connectors.models import (
    ClientAggregateScore,
    EnrollmentToken,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)


class IdFilter(filters.NumberFilter):
    """An id: a whole number (``NumberFilter``'s decimals would match ``2.5`` to 2 and crash on huge values).

    Declare it on ``<relation>__id``, not ``<relation>_id``: only the former gets Django's handling of
    ids beyond the database's integer range (no match instead of an overflow error).
    """

    field_class = forms.IntegerField


class ClientNameField(forms.UUIDField):
    """A client's uuid, or the public id of a client of a ``signed`` model (kept as the string)."""

    def to_python(self, value: Any) -> Any:
        if client_ids.is_public_id(value):
            return value
        return super().to_python(value)


class ClientFilter(filters.Filter):
    """``?client=``: by uuid, or by public id among the rows of ``signed`` models (``client_ids``).

    ``model_field`` is the path from a row to its model.
    """

    field_class = ClientNameField

    def __init__(self, *, model_field: str, **kwargs: Any) -> None:
        self.model_field = model_field
        super().__init__(**kwargs)

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if client_ids.is_public_id(value):
            signed = qs.filter(**{f"{self.model_field}__client_auth": FederatedModel.ClientAuth.SIGNED})
            return client_ids.filter_by_public_id(signed, value, uuid_field=self.field_name)
        return super().filter(qs, value)


class FederatedModelFilter(filters.FilterSet):
    allow_aggregation = filters.BooleanFilter()

    class Meta:
        model = FederatedModel
        fields = ["allow_aggregation"]


class ModelUpdateFilter(filters.FilterSet):
    federated_model = IdFilter(field_name="federated_model__id")
    status = filters.ChoiceFilter(choices=ModelUpdate.Status.choices)

    class Meta:
        model = ModelUpdate
        fields = ["federated_model", "status"]


class ModelAggregateFilter(filters.FilterSet):
    federated_model = IdFilter(field_name="federated_model__id")

    class Meta:
        model = ModelAggregate
        fields = ["federated_model"]


class ModelArtifactFilter(filters.FilterSet):
    federated_model = IdFilter(field_name="federated_model__id")

    class Meta:
        model = ModelArtifact
        fields = ["federated_model"]


class ClientAggregateScoreFilter(filters.FilterSet):
    aggregate = IdFilter(field_name="aggregate__id")
    client = ClientFilter(field_name="client_id", model_field="aggregate__federated_model")

    class Meta:
        model = ClientAggregateScore
        fields = ["aggregate", "client"]


class EnrollmentTokenFilter(filters.FilterSet):
    federated_model = IdFilter(field_name="federated_model__id")

    class Meta:
        model = EnrollmentToken
        fields = ["federated_model"]
