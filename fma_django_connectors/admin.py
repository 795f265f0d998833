"""Django admin over every FMA table."""

from django.contrib import admin

from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("uuid", "created_on")
    search_fields = ("uuid",)


@admin.register(FederatedModel)
class FederatedModelAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "developer", "aggregator", "requirement", "allow_aggregation", "created_on")
    list_filter = ("allow_aggregation", "aggregator")
    search_fields = ("name",)
    filter_horizontal = ("clients",)


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin):
    list_display = ("id", "federated_model", "version", "created_on")
    list_filter = ("federated_model",)


@admin.register(ModelAggregate)
class ModelAggregateAdmin(admin.ModelAdmin):
    list_display = ("id", "federated_model", "parent", "validation_score", "created_on")
    list_filter = ("federated_model",)


@admin.register(ModelUpdate)
class ModelUpdateAdmin(admin.ModelAdmin):
    list_display = ("id", "federated_model", "client", "status", "base_aggregate", "applied_aggregate", "created_on")
    list_filter = ("status", "federated_model")


@admin.register(ClientAggregateScore)
class ClientAggregateScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "aggregate", "client", "created_on")
    list_filter = ("aggregate__federated_model",)
