"""Query-string filters of API v1 (``?federated_model=``, ``?status=``, ...).

Related ids are plain whole numbers, so that filtering by an id outside the caller's scope gives an
empty list instead of revealing whether the object exists.
"""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters

from fma_django_connectors.models import (
    ClientAggregateScore,
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
    client = filters.UUIDFilter(field_name="client_id")

    class Meta:
        model = ClientAggregateScore
        fields = ["aggregate", "client"]
