"""API v1 viewsets: declarative scoping, serializers for the documents, services for every write.

Clients authenticate with ``CLIENT-UUID`` and see only what they are registered to or sent;
developers see their own models and everything under them; staff see everything. Anything
outside a caller's scope is a 404.
"""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from fma_core.serialization import weights_to_jsonable
from fma_django_connectors import enrollment, filters, selectors, serializers, services
from fma_django_connectors.authentication import request_actor, request_signed
from fma_django_connectors.models import Client
from fma_django_connectors.pagination import BareListPagination, FederatedModelPagination
from fma_django_connectors.permissions import IsDeveloper, IsRegisteredClient

# Newest first unless ``?ordering=`` says otherwise; ``-id`` keeps pages stable within one timestamp.
NEWEST_FIRST = ["-created_on", "-id"]

# Actions that only developers and staff may call.
DEVELOPER_ACTIONS = frozenset({"update", "partial_update", "destroy"})


def _calling_client(request: Request) -> Client | None:
    return request.auth if isinstance(request.auth, Client) else None


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
    def get_latest_aggregate(self, request: Request, pk: str | None = None) -> Response:
        aggregate = selectors.aggregate_latest(model=self.get_object())
        if aggregate is None:
            return Response({})
        return Response(serializers.ModelAggregateSerializer(aggregate, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["get"])
    def get_current_artifact(self, request: Request, pk: str | None = None) -> Response:
        artifact = self.get_object().current_artifact
        if artifact is None:
            return Response({})
        return Response(serializers.ModelArtifactSerializer(artifact, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["get"])
    def get_latest_model(self, request: Request, pk: str | None = None) -> Response:
        latest = selectors.model_latest_weights(model=self.get_object())
        if latest is None:
            return Response({})
        weights, aggregate = latest
        return Response({"values": weights_to_jsonable(weights), "aggregate": aggregate.pk if aggregate else None})


class ModelUpdateViewSet(viewsets.ModelViewSet):
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
        return selectors.update_list(actor=request_actor(self.request))

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action in DEVELOPER_ACTIONS:
            return serializers.ModelUpdateChangeSerializer
        if _calling_client(self.request) is not None:
            return serializers.ClientModelUpdateSerializer
        return serializers.ModelUpdateSerializer

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


class ModelAggregateViewSet(viewsets.ReadOnlyModelViewSet):
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
        data = serializers.ModelArtifactSerializer(artifact, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)


class ClientAggregateScoreViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Clients' scores of aggregates: a client sends and reads its own; developers those of their models."""

    pagination_class = BareListPagination
    filterset_class = filters.ClientAggregateScoreFilter
    ordering_fields = ["created_on"]
    ordering = NEWEST_FIRST

    def get_queryset(self) -> Any:
        return selectors.score_list(actor=request_actor(self.request))

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
