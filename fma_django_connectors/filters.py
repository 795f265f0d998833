"""Query-string filters of API v1 (``?federated_model=``, ``?status=``, ...).

Related ids are plain numbers, so that filtering by an id outside the caller's scope gives an empty
list instead of revealing whether the object exists.
"""

from __future__ import annotations

from django_filters import rest_framework as filters

from fma_django_connectors.models import ClientAggregateScore, FederatedModel, ModelAggregate, ModelUpdate


class FederatedModelFilter(filters.FilterSet):
    allow_aggregation = filters.BooleanFilter()

    class Meta:
        model = FederatedModel
        fields = ["allow_aggregation"]


class ModelUpdateFilter(filters.FilterSet):
    federated_model = filters.NumberFilter(field_name="federated_model_id")
    status = filters.ChoiceFilter(choices=ModelUpdate.Status.choices)

    class Meta:
        model = ModelUpdate
        fields = ["federated_model", "status"]


class ModelAggregateFilter(filters.FilterSet):
    federated_model = filters.NumberFilter(field_name="federated_model_id")

    class Meta:
        model = ModelAggregate
        fields = ["federated_model"]


class ClientAggregateScoreFilter(filters.FilterSet):
    aggregate = filters.NumberFilter(field_name="aggregate_id")
    client = filters.UUIDFilter(field_name="client_id")

    class Meta:
        model = ClientAggregateScore
        fields = ["aggregate", "client"]
