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
    ModelArtifact,
    ModelUpdate,
    Upload,
)
from fma_django_connectors.storage.weights_storage import weights_load


def _is_client(actor: Any) -> bool:
    return isinstance(actor, Client)


def _signed_models_hidden(actor: Client) -> bool:
    # On a ``signed`` model a client's uuid alone opens nothing: an unsigned request sees it as absent.
    return not getattr(actor, "request_signed", False)


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
        models = models.filter(clients=actor)
        return models.exclude(client_auth=FederatedModel.ClientAuth.SIGNED) if _signed_models_hidden(actor) else models
    if actor.is_staff:
        return models
    return models.filter(developer=actor)


def update_list(*, actor: Any) -> QuerySet[ModelUpdate]:
    """Updates ``actor`` may see: a client its own, a developer those of its models, staff all."""
    updates = ModelUpdate.objects.all()
    if _is_client(actor):
        updates = updates.filter(client=actor)
        if _signed_models_hidden(actor):
            return updates.exclude(federated_model__client_auth=FederatedModel.ClientAuth.SIGNED)
        return updates
    if actor.is_staff:
        return updates
    return updates.filter(federated_model__developer=actor)


def artifact_list(*, actor: Any) -> QuerySet[ModelArtifact]:
    """Artifacts of the models ``actor`` may see (a client: those it is registered to)."""
    return _of_visible_models(ModelArtifact.objects.all(), actor=actor)


def upload_list(*, actor: Any) -> QuerySet[Upload]:
    """Uploads ``actor`` may complete: those it made (staff: all); a client's on a ``signed`` model if it signed.

    An unsigned request does not see a signed model's uploads at all, so that a stolen uuid can neither
    complete one (and read the update it makes) nor learn that one exists.
    """
    uploads = Upload.objects.select_related("federated_model", "client")
    if _is_client(actor):
        uploads = uploads.filter(developer=None, client=actor)
        if _signed_models_hidden(actor):
            return uploads.exclude(federated_model__client_auth=FederatedModel.ClientAuth.SIGNED)
        return uploads
    if actor.is_staff:
        return uploads
    return uploads.filter(developer=actor)


def aggregate_list(*, actor: Any) -> QuerySet[ModelAggregate]:
    """Aggregates of the models ``actor`` may see (a client: those it is registered to)."""
    return _of_visible_models(ModelAggregate.objects.all(), actor=actor)


def _of_visible_models(rows: QuerySet[Any], *, actor: Any) -> QuerySet[Any]:
    """``rows`` (with a ``federated_model``) of the models ``actor`` may see."""
    if _is_client(actor):
        rows = rows.filter(federated_model__clients=actor)
        if _signed_models_hidden(actor):
            return rows.exclude(federated_model__client_auth=FederatedModel.ClientAuth.SIGNED)
        return rows
    if actor.is_staff:
        return rows
    return rows.filter(federated_model__developer=actor)


def score_list(*, actor: Any) -> QuerySet[ClientAggregateScore]:
    """Scores ``actor`` may see: a client its own, a developer those of its models' aggregates, staff all."""
    scores = ClientAggregateScore.objects.all()
    if _is_client(actor):
        scores = scores.filter(client=actor)
        if _signed_models_hidden(actor):
            return scores.exclude(aggregate__federated_model__client_auth=FederatedModel.ClientAuth.SIGNED)
        return scores
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
    latest = model_latest_weights_file(model=model)
    if latest is None:
        return None
    field, aggregate = latest
    return weights_load(field), aggregate


def model_latest_weights_file(*, model: FederatedModel) -> tuple[FieldFile, ModelAggregate | None] | None:
    """The file of ``model_latest_weights`` and the aggregate it belongs to (None for the artifact), or None."""
    aggregate = aggregate_latest(model=model)
    if aggregate is not None:
        return aggregate.result, aggregate
    if model.current_artifact is not None:
        return model.current_artifact.values, None
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
    """Models ``actor`` may call a model action on: any for a client (the permission checks registration).

    Documents (an update's ``federated_model``) name models among ``model_named``: an id outside it is
    answered as an unknown one.
    """
    # The action checks registration with one query of its own: no need to prefetch every client.
    return FederatedModel.objects.all() if _is_client(actor) else model_list(actor=actor)


def model_named(*, actor: Any) -> QuerySet[FederatedModel]:
    """Models ``actor`` may name by id in a document: those ``model_list`` holds, without its prefetch."""
    return model_list(actor=actor).prefetch_related(None)


def client_list(*, actor: Any) -> QuerySet[Client]:
    """Clients a developer may name in a document: those registered to its models (staff: all).

    Naming any other answers as an unknown uuid would, so that a uuid seen elsewhere is not confirmed.
    """
    if _is_client(actor):
        return Client.objects.filter(pk=actor.pk)
    if actor.is_staff:
        return client_all()
    return Client.objects.filter(federated_models__developer=actor).distinct()
