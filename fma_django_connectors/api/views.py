"""API v1 viewsets: declarative scoping, serializers for the documents, services for every write.

Clients authenticate with ``CLIENT-UUID`` and see only what they are registered to or sent;
developers see their own models and everything under them; staff see everything. Anything
outside a caller's scope is a 404.
"""

from __future__ import annotations

from typing import Any

from django.http.response import HttpResponseBase
from django.utils import timezone
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from fma_django_connectors import selectors, services
from fma_django_connectors.access import enrollment
from fma_django_connectors.access.authentication import request_actor, request_signed
from fma_django_connectors.access.permissions import IsDeveloper, IsRegisteredClient
from fma_django_connectors.api import filters, serializers
from fma_django_connectors.api.pagination import BareListPagination, FederatedModelPagination
from fma_django_connectors.models import Client, EnrollmentToken, ModelAggregate, ModelArtifact, ModelUpdate
from fma_django_connectors.storage import downloads, upload_urls

# Newest first unless ``?ordering=`` says otherwise; ``-id`` keeps pages stable within one timestamp.
NEWEST_FIRST = ["-created_on", "-id"]

# Actions that only developers and staff may call.
DEVELOPER_ACTIONS = frozenset({"update", "partial_update", "destroy"})


def _calling_client(request: Request) -> Client | None:
    return request.auth if isinstance(request.auth, Client) else None


def _no_weights(fmt: str | None, message: str) -> Response:
    """What a weights route answers when there are none: ``{}`` in the contract's JSON, a 404 for a format."""
    if fmt is None:
        return Response({})
    raise NotFound(message)


def _aggregate_download(request: Request, aggregate: ModelAggregate, *, fmt: str) -> HttpResponseBase:
    headers = {downloads.AGGREGATE_HEADER: str(aggregate.pk)}
    return downloads.weights_download(
        request, aggregate.result, fmt=fmt, headers=headers, name=f"aggregate-{aggregate.pk}"
    )


def _artifact_download(request: Request, artifact: ModelArtifact, *, fmt: str) -> HttpResponseBase:
    headers = {downloads.ARTIFACT_HEADER: str(artifact.pk)}
    return downloads.weights_download(
        request, artifact.values, fmt=fmt, headers=headers, name=f"artifact-{artifact.pk}"
    )


class WeightsListMixin:
    """Lists carry the URL of each row's weights instead of the weights (``WeightsField``)."""

    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()  # type: ignore[misc]
        if self.action == "list":  # type: ignore[attr-defined]
            context["weights_as_urls"] = serializers.WEIGHTS_AS_URLS_ALWAYS
        return context


def _write_answer_context(view: Any) -> dict[str, Any]:
    """The context of a write's answer: weights that do not fit a response are given as their URL."""
    return {**view.get_serializer_context(), "weights_as_urls": serializers.WEIGHTS_AS_URLS_BEYOND_LIMIT}


def _update_serializer_class(request: Request) -> type[BaseSerializer]:
    """An update as the caller sees it (a client: without ``applied_aggregate``)."""
    if _calling_client(request) is not None:
        return serializers.ClientModelUpdateSerializer
    return serializers.ModelUpdateSerializer


class FederatedModelViewSet(viewsets.ModelViewSet):
    """Federated models: developers manage their own, staff all; clients register and read the latest weights."""

    serializer_class = serializers.FederatedModelSerializer
    pagination_class = FederatedModelPagination
    filterset_class = filters.FederatedModelFilter
    ordering_fields = ["created_on"]
    ordering = NEWEST_FIRST

    # Actions open to the model's registered clients as well as to its developer.
    client_actions = frozenset({"get_latest_aggregate", "get_current_artifact", "get_latest_model"})

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "register_client":
            return [AllowAny()]
        if self.action in self.client_actions:
            return [IsAuthenticated(), IsRegisteredClient()]
        return [IsDeveloper()]

    def get_queryset(self) -> Any:
        if self.action == "register_client":
            return selectors.model_all()
        return selectors.model_targets(actor=request_actor(self.request))

    def perform_create(self, serializer: BaseSerializer) -> None:
        fields = {"developer": self.request.user, **serializer.validated_data}
        serializer.instance = services.model_create(**fields)

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.model_update(model=serializer.instance, changes=serializer.validated_data)

    def perform_destroy(self, instance: Any) -> None:
        services.model_delete(model=instance)

    @action(detail=True, methods=["post"])
    def register_client(self, request: Request, pk: str | None = None) -> Response:
        body = enrollment.RegisterClientSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        client = enrollment.client_enroll(
            model=self.get_object(),
            client=_calling_client(request),
            signed=request_signed(request),
            enrollment_token=body.validated_data.get("enrollment_token"),
            public_key=body.validated_data.get("public_key"),
        )
        return Response({"uuid": client.uuid})

    @action(detail=True, methods=["post"])
    def add_client(self, request: Request, pk: str | None = None) -> Response:
        """A developer adds a new client (with its ``public_key``, if any) to its model: ``201 {"uuid"}``.

        The way into a ``closed`` model; the developer hands the uuid to the client.
        """
        body = enrollment.NewClientSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        client = enrollment.client_add(model=self.get_object(), public_key=body.validated_data.get("public_key"))
        return Response({"uuid": client.uuid}, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def get_latest_aggregate(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        model = self.get_object()
        aggregate = selectors.aggregate_latest(model=model)
        fmt = downloads.requested_format(request)
        if aggregate is None:
            return _no_weights(fmt, f"Model {model.pk} has no aggregate yet.")
        if fmt is not None:
            return _aggregate_download(request, aggregate, fmt=fmt)
        headers = {downloads.AGGREGATE_HEADER: str(aggregate.pk)}
        data = serializers.ModelAggregateSerializer(aggregate, context=self.get_serializer_context()).data
        return Response(data, headers=headers)

    @action(detail=True, methods=["get"])
    def get_current_artifact(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        model = self.get_object()
        artifact = model.current_artifact
        fmt = downloads.requested_format(request)
        if artifact is None:
            return _no_weights(fmt, f"Model {model.pk} has no current artifact.")
        headers = {downloads.ARTIFACT_HEADER: str(artifact.pk)}
        if fmt is not None:
            return downloads.weights_download(
                request, artifact.values, fmt=fmt, headers=headers, name=f"artifact-{artifact.pk}"
            )
        data = serializers.ModelArtifactSerializer(artifact, context=self.get_serializer_context()).data
        return Response(data, headers=headers)

    @action(detail=True, methods=["get"])
    def get_latest_model(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        model = self.get_object()
        latest = selectors.model_latest_weights_file(model=model)
        fmt = downloads.requested_format(request)
        if latest is None:
            return _no_weights(fmt, f"Model {model.pk} has no weights yet.")
        field, aggregate = latest
        headers = {downloads.AGGREGATE_HEADER: str(aggregate.pk)} if aggregate else {}
        if fmt is not None:
            return downloads.weights_download(request, field, fmt=fmt, headers=headers, name=f"model-{model.pk}")
        values = downloads.weights_json(field, url=request.build_absolute_uri(request.path))
        return Response({"values": values, "aggregate": aggregate.pk if aggregate else None}, headers=headers)


class ModelUpdateViewSet(WeightsListMixin, viewsets.ModelViewSet):
    """Model updates: a client sends and reads its own; developers those of their models; staff all.

    Changing or deleting an update is for developers and staff only.
    """

    pagination_class = BareListPagination
    filterset_class = filters.ModelUpdateFilter
    ordering_fields = ["created_on"]
    ordering = NEWEST_FIRST

    def get_permissions(self) -> list[BasePermission]:
        return [IsDeveloper()] if self.action in DEVELOPER_ACTIONS else [IsAuthenticated()]

    def get_queryset(self) -> Any:
        # Its model along, for the client as the developer sees it (``serializers.DeveloperClientLabel``).
        return selectors.update_list(actor=request_actor(self.request)).select_related("federated_model")

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action in DEVELOPER_ACTIONS:
            return serializers.ModelUpdateChangeSerializer
        return _update_serializer_class(self.request)

    def perform_create(self, serializer: BaseSerializer) -> None:
        fields = serializer.validated_data
        serializer.instance = services.update_create(
            model=fields["federated_model"],
            client=_calling_client(self.request) or fields["client"],
            weights=fields["data"],
            base_aggregate=fields.get("base_aggregate"),
            num_examples=fields.get("num_examples", 1),
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.update_change(update=serializer.instance, changes=serializer.validated_data)

    def perform_destroy(self, instance: Any) -> None:
        services.update_delete(update=instance)

    @action(detail=True, methods=["get"], url_path="data", url_name="data")
    def download_data(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        update = self.get_object()
        fmt = downloads.requested_format(request) or downloads.JSON
        return downloads.weights_download(request, update.data, fmt=fmt, headers={}, name=f"update-{update.pk}")


class ModelAggregateViewSet(WeightsListMixin, viewsets.ReadOnlyModelViewSet):
    """Aggregates of the models a caller may see; developers and staff publish them as artifacts."""

    serializer_class = serializers.ModelAggregateSerializer
    pagination_class = BareListPagination
    filterset_class = filters.ModelAggregateFilter
    ordering_fields = ["created_on", "validation_score"]
    ordering = NEWEST_FIRST

    def get_permissions(self) -> list[BasePermission]:
        return [IsDeveloper()] if self.action == "publish_aggregate" else [IsAuthenticated()]

    def get_queryset(self) -> Any:
        return selectors.aggregate_list(actor=request_actor(self.request))

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "publish_aggregate":
            return serializers.PublishAggregateSerializer
        return serializers.ModelAggregateSerializer

    @action(detail=True, methods=["post"])
    def publish_aggregate(self, request: Request, pk: str | None = None) -> Response:
        aggregate = self.get_object()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        artifact = services.aggregate_publish(aggregate=aggregate, version=body.validated_data["version"])
        data = serializers.ModelArtifactSerializer(artifact, context=_write_answer_context(self)).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def result(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return _aggregate_download(
            request, self.get_object(), fmt=downloads.requested_format(request) or downloads.JSON
        )


class ModelArtifactViewSet(WeightsListMixin, viewsets.ReadOnlyModelViewSet):
    """Artifacts of the models a caller may see (registered clients, owner, staff)."""

    serializer_class = serializers.ModelArtifactSerializer
    pagination_class = BareListPagination
    filterset_class = filters.ModelArtifactFilter
    ordering_fields = ["created_on"]
    ordering = NEWEST_FIRST

    def get_queryset(self) -> Any:
        return selectors.artifact_list(actor=request_actor(self.request))

    @action(detail=True, methods=["get"])
    def values(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return _artifact_download(request, self.get_object(), fmt=downloads.requested_format(request) or downloads.JSON)


class ClientAggregateScoreViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Clients' scores of aggregates: a client sends and reads its own; developers those of their models."""

    pagination_class = BareListPagination
    filterset_class = filters.ClientAggregateScoreFilter
    ordering_fields = ["created_on"]
    ordering = NEWEST_FIRST

    def get_queryset(self) -> Any:
        return selectors.score_list(actor=request_actor(self.request)).select_related("aggregate__federated_model")

    def get_serializer_class(self) -> type[BaseSerializer]:
        if _calling_client(self.request) is not None:
            return serializers.ClientClientAggregateScoreSerializer
        return serializers.ClientAggregateScoreSerializer

    def perform_create(self, serializer: BaseSerializer) -> None:
        fields = serializer.validated_data
        serializer.instance = services.score_create(
            aggregate=fields["aggregate"],
            client=_calling_client(self.request) or fields["client"],
            validation_results=fields["validation_results"],
        )


class UploadViewSet(viewsets.GenericViewSet):
    """Uploads of weights past the request limit: made by a client or developer, completed by whoever made it.

    ``POST`` checks every rule that does not need the bytes and answers where to send them;
    ``complete`` checks the bytes and makes the update or artifact (``201``; again: ``200``, the same one).
    """

    serializer_class = serializers.UploadSerializer

    def get_queryset(self) -> Any:
        return selectors.upload_list(actor=request_actor(self.request))

    def create(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        client = _calling_client(request)
        upload = services.upload_create(
            model=fields.pop("federated_model"),
            developer=None if client else request.user,
            client=client or fields.pop("client", None),
            **{name: value for name, value in fields.items() if name != "client"},
        )
        return Response(upload_urls.upload_target(request=request, upload=upload), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        made, created = services.upload_complete(upload=self.get_object())
        context = _write_answer_context(self)
        if isinstance(made, ModelUpdate):
            serializer_class = (
                serializers.ClientModelUpdateSerializer
                if _calling_client(request)
                else serializers.ModelUpdateSerializer
            )
            data = serializer_class(made, context=context).data
        else:
            data = serializers.ModelArtifactSerializer(made, context=context).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class EnrollmentTokenViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Enrollment tokens of a developer's models (staff: all): create, list, read, revoke (delete)."""

    serializer_class = enrollment.EnrollmentTokenSerializer
    pagination_class = BareListPagination
    permission_classes = [IsDeveloper]
    filterset_class = filters.EnrollmentTokenFilter
    ordering_fields = ["created_on"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular describing the view: no caller
            return EnrollmentToken.objects.none()
        actor = request_actor(self.request)
        return EnrollmentToken.objects.filter(federated_model__in=selectors.model_list(actor=actor))

    def perform_create(self, serializer: BaseSerializer) -> None:
        fields = serializer.validated_data
        token, key = enrollment.enrollment_token_create(
            model=fields["federated_model"],
            uses=fields.get("uses", 1),
            expires_at=fields.get("expires_at") or timezone.now() + enrollment.DEFAULT_TOKEN_LIFETIME,
        )
        token.key = key  # type: ignore[attr-defined]  (shown in this one answer, never stored)
        serializer.instance = token
