"""Every read of the API: what each caller may see, and the weights a model currently stands at."""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F, QuerySet
from django.db.models.fields.files import FieldFile

from fma_core.serialization import Structure, Weights
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelUpdate,
)
from fma_django_connectors.weights_storage import weights_load


def _is_client(actor: Any) -> bool:
    return isinstance(actor, Client)


def client_get(*, uuid: uuid_module.UUID) -> Client | None:
    """The client with that uuid, if any."""
    return Client.objects.filter(uuid=uuid).first()


def client_all() -> QuerySet[Client]:
    """Every client (a developer may name any; actions check registration)."""
    return Client.objects.all()


def developer_all() -> QuerySet[Any]:
    """Every Django user that may own models (naming another than oneself is for staff only)."""
    return get_user_model().objects.all()


def client_is_registered(*, model: FederatedModel, client: Client) -> bool:
    """Whether ``client`` is registered to ``model``."""
    return model.clients.filter(uuid=client.uuid).exists()


def model_has_pending_work(*, model_id: int) -> bool:
    """Whether an aggregation of the model may still have something to do.

    Updates waiting (``PENDING``), to retry (``FAILED``) or claimed by a run that may die and leave them to
    be reclaimed (``RUNNING``), of clients registered to the model: an update of a client that left waits
    without counting, and must not keep a schedule running.
    """
    return ModelUpdate.objects.filter(
        federated_model_id=model_id,
        status__in=[ModelUpdate.Status.PENDING, ModelUpdate.Status.RUNNING, ModelUpdate.Status.FAILED],
        client__federated_models=model_id,
    ).exists()


def models_with_pending_work() -> list[int]:
    """Ids of the models that allow aggregation and have pending work (as ``model_has_pending_work``)."""
    return list(
        FederatedModel.objects.filter(
            allow_aggregation=True,
            updates__status__in=[ModelUpdate.Status.PENDING, ModelUpdate.Status.RUNNING, ModelUpdate.Status.FAILED],
            updates__client__federated_models=F("pk"),
        )
        .distinct()
        .values_list("pk", flat=True)
    )


def model_all() -> QuerySet[FederatedModel]:
    """Every model, for lookups that check access themselves (registration, registered clients)."""
    return FederatedModel.objects.prefetch_related("clients")


def model_list(*, actor: Any) -> QuerySet[FederatedModel]:
    """Models ``actor`` may see: a client those it is registered to, a developer its own, staff all."""
    models = model_all()
    if _is_client(actor):
        return models.filter(clients=actor)
    if actor.is_staff:
        return models
    return models.filter(developer=actor)


def update_list(*, actor: Any) -> QuerySet[ModelUpdate]:
    """Updates ``actor`` may see: a client its own, a developer those of its models, staff all."""
    updates = ModelUpdate.objects.all()
    if _is_client(actor):
        return updates.filter(client=actor)
    if actor.is_staff:
        return updates
    return updates.filter(federated_model__developer=actor)


def aggregate_list(*, actor: Any) -> QuerySet[ModelAggregate]:
    """Aggregates of the models ``actor`` may see (a client: those it is registered to)."""
    aggregates = ModelAggregate.objects.all()
    if _is_client(actor):
        return aggregates.filter(federated_model__clients=actor)
    if actor.is_staff:
        return aggregates
    return aggregates.filter(federated_model__developer=actor)


def score_list(*, actor: Any) -> QuerySet[ClientAggregateScore]:
    """Scores ``actor`` may see: a client its own, a developer those of its models' aggregates, staff all."""
    scores = ClientAggregateScore.objects.all()
    if _is_client(actor):
        return scores.filter(client=actor)
    if actor.is_staff:
        return scores
    return scores.filter(aggregate__federated_model__developer=actor)


def aggregate_latest(*, model: FederatedModel) -> ModelAggregate | None:
    """The model's newest aggregate, if any."""
    return model.aggregates.order_by("-created_on", "-id").first()


def model_latest_weights(*, model: FederatedModel) -> tuple[Weights, ModelAggregate | None] | None:
    """The weights a client should train from: the newest aggregate's, else the current artifact's.

    Returns the weights and the aggregate they come from (None for the artifact), or None when the
    model has neither.
    """
    aggregate = aggregate_latest(model=model)
    if aggregate is not None:
        return weights_load(aggregate.result), aggregate
    if model.current_artifact is not None:
        return weights_load(model.current_artifact.values), None
    return None


def model_structure(*, model: FederatedModel) -> Structure | None:
    """The structure every update of ``model`` must have, from its row (no weights file is read)."""
    return None if model.structure is None else Structure.from_json(model.structure)


def model_weight_files(*, model: FederatedModel) -> list[FieldFile]:
    """Every weights file that belongs to ``model`` (artifacts, aggregates, updates, aggregator state)."""
    files: list[FieldFile] = [artifact.values for artifact in model.artifacts.all()]
    files += [aggregate.result for aggregate in model.aggregates.all()]
    files += [update.data for update in model.updates.all()]
    if model.aggregator_state:
        files.append(model.aggregator_state)
    return [file for file in files if file.name]


def model_targets(*, actor: Any) -> QuerySet[FederatedModel]:
    """Models ``actor`` may name by id in an action: any for a client (the action checks registration)."""
    # The action checks registration with one query of its own: no need to prefetch every client.
    return FederatedModel.objects.all() if _is_client(actor) else model_list(actor=actor)


def aggregate_targets(*, actor: Any) -> QuerySet[ModelAggregate]:
    """Aggregates ``actor`` may name by id in an action: any for a client (the action checks registration)."""
    return ModelAggregate.objects.all() if _is_client(actor) else aggregate_list(actor=actor)
