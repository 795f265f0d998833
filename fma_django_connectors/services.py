"""Every write of the API. Keyword-only functions named ``<entity>_<action>``.

A service that writes weights files removes them again when it fails, so a rejected request leaves
neither a row nor a file behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.models.fields.files import FieldFile

from fma_core.serialization import Weights
from fma_django_connectors import selectors, triggers
from fma_django_connectors.exceptions import ApplicationError, DuplicateError, NotRegisteredError
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)
from fma_django_connectors.schedules import schedule_remove, schedule_sync, schedule_wake
from fma_django_connectors.weights_storage import weights_delete, weights_load, weights_save

INITIAL_ARTIFACT_VERSION = "1.0.0"


class _NewFiles:
    """The weights files written by one service call, so that a failure can take them back."""

    def __init__(self) -> None:
        self.fields: list[FieldFile] = []

    def save(self, field: FieldFile, weights: Weights) -> None:
        weights_save(field=field, weights=weights)
        self.fields.append(field)


@contextmanager
def _atomic_with_files() -> Iterator[_NewFiles]:
    """A transaction whose new weights files are deleted if it does not commit."""
    new_files = _NewFiles()
    try:
        with transaction.atomic():
            yield new_files
    except BaseException:
        for field in new_files.fields:
            weights_delete(field)
        raise


def _delete_files_on_commit(files: Iterable[FieldFile]) -> None:
    for field in list(files):
        transaction.on_commit(partial(weights_delete, field))


def client_create(*, public_key: bytes | None = None) -> Client:
    """A new client with a fresh uuid (and the raw Ed25519 public key it signs with, if any)."""
    return Client.objects.create(public_key=public_key)


def client_register(*, model: FederatedModel, client: Client | None = None, public_key: bytes | None = None) -> Client:
    """Register ``client`` (a new one, with ``public_key``, when None) to ``model``; twice changes nothing."""
    with transaction.atomic():
        if client is None:
            client = client_create(public_key=public_key)
        model.clients.add(client)
    return client


def _artifact_create(*, new_files: _NewFiles, model: FederatedModel, weights: Weights, version: str) -> ModelArtifact:
    duplicate = DuplicateError(f"Model {model.pk} already has an artifact of version {version!r}.", field="version")
    if model.artifacts.filter(version=version).exists():
        raise duplicate
    artifact = ModelArtifact(federated_model=model, version=version)
    new_files.save(artifact.values, weights)
    try:
        # A savepoint, so that losing a race on the unique version leaves the outer transaction usable.
        with transaction.atomic():
            artifact.save()
    except IntegrityError:
        raise duplicate from None
    return artifact


def _artifact_make_current(*, model: FederatedModel, artifact: ModelArtifact) -> None:
    model.current_artifact = artifact
    model.save(update_fields=["current_artifact", "last_modified"])


def model_create(
    *,
    developer: Any,
    name: str,
    aggregator: str,
    aggregator_args: dict[str, Any] | None = None,
    requirement: str = "",
    requirement_args: dict[str, Any] | None = None,
    update_schema: Any = None,
    client_agg_results_schema: Any = None,
    furthest_base_agg: int | None = None,
    allow_aggregation: bool = False,
    registration: str = FederatedModel.Registration.OPEN,
    client_auth: str = FederatedModel.ClientAuth.UUID,
    clients: Iterable[Client] = (),
    initial_model: Weights | None = None,
) -> FederatedModel:
    """Create a model; ``initial_model`` becomes its artifact version 1.0.0 and ``current_artifact``."""
    with _atomic_with_files() as new_files:
        model = FederatedModel(
            name=name,
            developer=developer,
            aggregator=aggregator,
            aggregator_args=aggregator_args,
            requirement=requirement,
            requirement_args=requirement_args,
            update_schema=update_schema,
            client_agg_results_schema=client_agg_results_schema,
            furthest_base_agg=furthest_base_agg,
            allow_aggregation=allow_aggregation,
            registration=registration,
            client_auth=client_auth,
        )
        model.full_clean()
        model.save()
        model.clients.set(clients)
        if initial_model is not None:
            artifact = _artifact_create(
                new_files=new_files, model=model, weights=initial_model, version=INITIAL_ARTIFACT_VERSION
            )
            _artifact_make_current(model=model, artifact=artifact)
        schedule_sync(model=model)
    return model


def model_update(*, model: FederatedModel, changes: dict[str, Any]) -> FederatedModel:
    """Change a model's fields (``clients`` replaces the registered clients) and resync its schedule."""
    changes = dict(changes)
    clients = changes.pop("clients", None)
    with transaction.atomic():
        for field, value in changes.items():
            setattr(model, field, value)
        model_save(model=model)
        if clients is not None:
            model.clients.set(clients)
    return model


def model_save(*, model: FederatedModel) -> None:
    """Save a model whose fields are already set (new or changed, e.g. by the admin) and resync its schedule."""
    with transaction.atomic():
        model.full_clean()
        model.save()
        schedule_sync(model=model)


def model_delete(*, model: FederatedModel) -> None:
    """Delete a model with everything under it, its schedule, and (once committed) its weights files."""
    files = selectors.model_weight_files(model=model)
    with transaction.atomic():
        schedule_remove(model_id=model.pk)
        model.delete()
        _delete_files_on_commit(files)


def _as_layers(weights: Weights, *, layered: bool) -> Weights:
    # A document of equal-length rows ([[1, 2], [3, 4]]) parses as one array; next to weights whose
    # layers differ in shape, the client meant one layer per row.
    if layered and not weights.layered and weights.layers[0].ndim > 1:
        return Weights(layers=tuple(weights.layers[0]), layered=True)
    return weights


def _check_update_structure(*, reference: Weights, weights: Weights) -> None:
    """Raise a 400 on ``data`` naming the first layer that differs from the model's weights, with both shapes."""
    layered = reference.layered or weights.layered
    expected = _as_layers(reference, layered=layered).shapes
    got = _as_layers(weights, layered=layered).shapes
    # Layers the two have in common first, so that a layer count off by one still names a shape.
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            raise ApplicationError(
                f"layer {index} has shape {list(have)} but the model's weights have shape {list(want)}", field="data"
            )
    if len(got) != len(expected):
        index = min(len(got), len(expected))
        problem = (
            f"layer {index} (shape {list(got[index])}) is not in the model's weights"
            if len(got) > len(expected)
            else f"layer {index} (shape {list(expected[index])}) is missing"
        )
        raise ApplicationError(
            f"data has {_layer_count(got)} but the model's weights have {_layer_count(expected)}: {problem}",
            field="data",
        )


def _layer_count(shapes: tuple[tuple[int, ...], ...]) -> str:
    return "1 layer" if len(shapes) == 1 else f"{len(shapes)} layers"


def update_create(
    *,
    model: FederatedModel,
    client: Client,
    weights: Weights,
    base_aggregate: ModelAggregate | None = None,
    num_examples: int = 1,
) -> ModelUpdate:
    """Store a pending update of ``client`` for ``model`` and ask for an aggregation once committed.

    The client must be registered to the model, ``base_aggregate`` must be one of the model's, and
    the weights must have the structure of the model's current weights when it has any.
    """
    if not selectors.client_is_registered(model=model, client=client):
        raise NotRegisteredError(f"Client {client.uuid} is not registered to model {model.pk}.")
    if base_aggregate is not None and base_aggregate.federated_model_id != model.pk:
        raise ApplicationError(
            f"Aggregate {base_aggregate.pk} is not an aggregate of model {model.pk}.", field="base_aggregate"
        )
    reference = selectors.model_reference_weights(model=model)
    if reference is not None:
        _check_update_structure(reference=reference, weights=weights)
    with _atomic_with_files() as new_files:
        update = ModelUpdate(
            federated_model=model, client=client, base_aggregate=base_aggregate, num_examples=num_examples
        )
        new_files.save(update.data, weights)
        update.full_clean()
        update.save()
        transaction.on_commit(partial(_update_stored, model=model))
    return update


def _update_stored(*, model: FederatedModel) -> None:
    # The schedule first: should the trigger's aggregation be lost, the sweep is already armed.
    schedule_wake(model=model)
    triggers.request_aggregation(model_id=model.pk)


def update_change(*, update: ModelUpdate, changes: dict[str, Any]) -> ModelUpdate:
    """Change an update's status (the only field a developer may set after creation)."""
    with transaction.atomic():
        for field, value in changes.items():
            setattr(update, field, value)
        update.full_clean()
        update.save()
    return update


def update_delete(*, update: ModelUpdate) -> None:
    """Delete an update and, once committed, its weights file."""
    row_delete(row=update, files=[update.data])


def row_delete(*, row: Model, files: Iterable[FieldFile]) -> None:
    """Delete ``row`` (and what cascades from it) and, once committed, the weights ``files`` it owns."""
    with transaction.atomic():
        row.delete()
        _delete_files_on_commit(files)


def aggregate_publish(*, aggregate: ModelAggregate, version: str) -> ModelArtifact:
    """Copy an aggregate's result into a new artifact of ``version`` and make it the model's current one."""
    model = aggregate.federated_model
    weights = weights_load(aggregate.result)
    with _atomic_with_files() as new_files:
        artifact = _artifact_create(new_files=new_files, model=model, weights=weights, version=version)
        _artifact_make_current(model=model, artifact=artifact)
    return artifact


def score_create(*, aggregate: ModelAggregate, client: Client, validation_results: Any) -> ClientAggregateScore:
    """Record ``client``'s validation of ``aggregate``; one score per (aggregate, client)."""
    model = aggregate.federated_model
    if not selectors.client_is_registered(model=model, client=client):
        raise NotRegisteredError(f"Client {client.uuid} is not registered to model {model.pk}.")
    duplicate = DuplicateError(f"Client {client.uuid} has already scored aggregate {aggregate.pk}.")
    if ClientAggregateScore.objects.filter(aggregate=aggregate, client=client).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return ClientAggregateScore.objects.create(
                aggregate=aggregate, client=client, validation_results=validation_results
            )
    except IntegrityError:
        raise duplicate from None
