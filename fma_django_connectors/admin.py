"""Django admin over every FMA table.

Saving and deleting go through the same services as the API, so that an admin change keeps a
model's aggregation schedule in step and a deletion takes its weights files along; forms check what
the API checks with the API's own serializers. Enrollment tokens and clients added to a model are made
by the same functions as ``/api/v1/enrollment_tokens/`` and ``add_client``.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from rest_framework.serializers import BaseSerializer

from fma_django_connectors import services
from fma_django_connectors.access import enrollment
from fma_django_connectors.api.serializers import FederatedModelSerializer
from fma_django_connectors.exceptions import ApplicationError
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    EnrollmentToken,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)


def _checked_by(form: forms.Form, serializer: BaseSerializer) -> None:
    """Add the API serializer's refusals to ``form``, on the field they concern when the form has it."""
    if not serializer.is_valid():
        for field, messages in serializer.errors.items():
            form.add_error(field if field in form.fields else None, [str(message) for message in messages])


class FederatedModelForm(forms.ModelForm):
    """Aggregator and requirement names, their arguments, the JSON Schemas, the registration and client
    authentication rules, checked as the API checks them."""

    # Fields the API validates beyond what the model's columns enforce.
    checked_fields = (
        "aggregator",
        "aggregator_args",
        "requirement",
        "requirement_args",
        "update_schema",
        "client_agg_results_schema",
        "registration",
        "client_auth",
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
            "registration",
            "client_auth",
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
        _checked_by(self, FederatedModelSerializer(instance=instance, data=data, partial=True))
        return cleaned


@admin.register(FederatedModel)
class FederatedModelAdmin(admin.ModelAdmin):
    form = FederatedModelForm
    list_display = (
        "id",
        "name",
        "developer",
        "aggregator",
        "requirement",
        "allow_aggregation",
        "registration",
        "client_auth",
        "created_on",
    )
    list_filter = ("allow_aggregation", "aggregator", "registration", "client_auth")
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


class ClientAddForm(forms.ModelForm):
    """A new client added to a model (the way into a ``closed`` one), checked and made as ``add_client`` does."""

    federated_model = forms.ModelChoiceField(
        queryset=FederatedModel.objects.all(), help_text="The model the new client is registered to."
    )
    public_key = forms.CharField(
        required=False,
        help_text="The client's Ed25519 public key, base64 of its 32 bytes; required on signed models.",
    )

    class Meta:
        model = Client
        fields: list[str] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        body = enrollment.NewClientSerializer(
            data={"public_key": cleaned["public_key"]} if cleaned.get("public_key") else {}
        )
        _checked_by(self, body)
        if self.errors:
            return cleaned
        cleaned["public_key"] = body.validated_data.get("public_key")
        try:
            enrollment.client_add_check(model=cleaned["federated_model"], public_key=cleaned["public_key"])
        except ApplicationError as error:
            self.add_error(error.field, error.message)
        return cleaned


@admin.register(Client)
class ClientAdmin(WeightsFileAdmin):
    list_display = ("uuid", "created_on")
    search_fields = ("uuid",)

    def get_form(self, request: HttpRequest, obj: Client | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ClientAddForm
            # The form's own ``public_key`` (the key as text) stands in for the column, which is not editable.
            kwargs["exclude"] = ["public_key"]
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Client, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        added = enrollment.client_add(
            model=form.cleaned_data["federated_model"], public_key=form.cleaned_data["public_key"]
        )
        # The admin goes on with ``obj`` (its log entry, its message with the uuid to hand over): make it the
        # client just added.
        obj.uuid, obj.public_key, obj.created_on = added.uuid, added.public_key, added.created_on
        obj._state.adding = False

    def weight_files(self, obj: Client) -> list[FieldFile]:
        return [update.data for update in obj.updates.all()]


class EnrollmentTokenForm(forms.ModelForm):
    """A new enrollment token: its model, uses and expiry, checked as ``/api/v1/enrollment_tokens/`` checks them."""

    class Meta:
        model = EnrollmentToken
        fields = ["federated_model", "uses", "expires_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        data = {field: cleaned[field] for field in ("uses", "expires_at") if cleaned.get(field) is not None}
        _checked_by(self, enrollment.EnrollmentTokenSerializer(data=data, partial=True))
        return cleaned


@admin.register(EnrollmentToken)
class EnrollmentTokenAdmin(admin.ModelAdmin):
    """Tokens are made (the key shown once, on the page that answers the form), read and revoked; never edited."""

    form = EnrollmentTokenForm
    list_display = ("id", "federated_model", "uses", "used", "expires_at", "created_on")
    list_filter = ("federated_model",)
    created_template = "admin/fma_django_connectors/enrollmenttoken/created.html"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = {"expires_at": timezone.now() + enrollment.DEFAULT_TOKEN_LIFETIME}
        return {**initial, **super().get_changeform_initial_data(request)}

    def has_change_permission(self, request: HttpRequest, obj: EnrollmentToken | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: EnrollmentToken, form: forms.ModelForm, change: bool) -> None:
        obj.key = enrollment.enrollment_token_issue(token=obj)  # type: ignore[attr-defined]  (shown once)

    def response_add(
        self, request: HttpRequest, obj: EnrollmentToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        # The key is rendered here and nowhere else: not in a message (a cookie), not in a redirect.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Enrollment token created",
            "token": obj,
            "key": obj.key,  # type: ignore[attr-defined]
        }
        return TemplateResponse(request, self.created_template, context)


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
