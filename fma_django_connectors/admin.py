"""Django admin over every FMA table.

Saving and deleting go through the same services as the API, so that an admin change keeps a
model's aggregation schedule in step and a deletion takes its weights files along.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest

from fma_django_connectors import services
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)
from fma_django_connectors.serializers import FederatedModelSerializer


class FederatedModelForm(forms.ModelForm):
    """Aggregator and requirement names, their arguments and the JSON Schemas, checked as the API checks them."""

    # Fields the API validates beyond what the model's columns enforce.
    checked_fields = (
        "aggregator",
        "aggregator_args",
        "requirement",
        "requirement_args",
        "update_schema",
        "client_agg_results_schema",
    )

    class Meta:
        model = FederatedModel
        fields = [
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
            "aggregator_state",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A model publishes only its own artifacts; a model being added has none yet.
        artifact = self.fields["current_artifact"]
        artifact.queryset = ModelArtifact.objects.filter(federated_model=self.instance.pk)
        artifact.error_messages["invalid_choice"] = "Choose one of this model's own artifacts."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        data = {field: cleaned[field] for field in self.checked_fields if field in cleaned}
        instance = self.instance if self.instance.pk else None
        serializer = FederatedModelSerializer(instance=instance, data=data, partial=True)
        if not serializer.is_valid():
            for field, messages in serializer.errors.items():
                self.add_error(field if field in self.fields else None, [str(message) for message in messages])
        return cleaned


@admin.register(FederatedModel)
class FederatedModelAdmin(admin.ModelAdmin):
    form = FederatedModelForm
    list_display = ("id", "name", "developer", "aggregator", "requirement", "allow_aggregation", "created_on")
    list_filter = ("allow_aggregation", "aggregator")
    search_fields = ("name",)
    filter_horizontal = ("clients",)

    def save_model(self, request: HttpRequest, obj: FederatedModel, form: forms.ModelForm, change: bool) -> None:
        services.model_save(model=obj)

    def delete_model(self, request: HttpRequest, obj: FederatedModel) -> None:
        services.model_delete(model=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FederatedModel]) -> None:
        for model in queryset:
            services.model_delete(model=model)


class WeightsFileAdmin(admin.ModelAdmin):
    """Rows that own weights files (their own or their cascade's): deleting one removes them once committed."""

    def weight_files(self, obj: Any) -> list[FieldFile]:  # pragma: no cover
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.row_delete(row=obj, files=self.weight_files(obj))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for row in queryset:
            self.delete_model(request, row)


@admin.register(Client)
class ClientAdmin(WeightsFileAdmin):
    list_display = ("uuid", "created_on")
    search_fields = ("uuid",)

    def weight_files(self, obj: Client) -> list[FieldFile]:
        return [update.data for update in obj.updates.all()]


@admin.register(ModelArtifact)
class ModelArtifactAdmin(WeightsFileAdmin):
    list_display = ("id", "federated_model", "version", "aggregate", "created_on")
    list_filter = ("federated_model",)
    # Recorded by publishing, not chosen: a select of every aggregate would also be a heavy page.
    readonly_fields = ("aggregate",)

    def weight_files(self, obj: ModelArtifact) -> list[FieldFile]:
        return [obj.values]


@admin.register(ModelAggregate)
class ModelAggregateAdmin(WeightsFileAdmin):
    list_display = ("id", "federated_model", "parent", "validation_score", "created_on")
    list_filter = ("federated_model",)

    def weight_files(self, obj: ModelAggregate) -> list[FieldFile]:
        return [obj.result]


@admin.register(ModelUpdate)
class ModelUpdateAdmin(WeightsFileAdmin):
    list_display = ("id", "federated_model", "client", "status", "base_aggregate", "applied_aggregate", "created_on")
    list_filter = ("status", "federated_model")

    def weight_files(self, obj: ModelUpdate) -> list[FieldFile]:
        return [obj.data]


@admin.register(ClientAggregateScore)
class ClientAggregateScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "aggregate", "client", "created_on")
    list_filter = ("aggregate__federated_model",)
