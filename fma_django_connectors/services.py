"""Every write of the API. Keyword-only functions named ``<entity>_<action>``.

A service that writes weights files removes them again when it fails, so a rejected request leaves
neither a row nor a file behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.models.fields.files import FieldFile

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Structure, Weights, check_structure, conform_json_names
from fma_core.tensors import TensorSource, l2_norm
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
from fma_django_connectors.weights_storage import structure_columns, weights_delete, weights_open, weights_save

INITIAL_ARTIFACT_VERSION = "1.0.0"


class _NewFiles:
    """The weights files written by one service call, so that a failure can take them back."""

    def __init__(self) -> None:
        self.fields: list[FieldFile] = []

    def save(self, field: FieldFile, weights: TensorSource) -> None:
        """Write the file of ``field`` and fill the structure columns of the row that owns it."""
        structure = weights_save(field=field, weights=weights)
        self.fields.append(field)
        for column, value in structure_columns(structure).items():
            setattr(field.instance, column, value)


@contextmanager
def _files_undone_on_failure() -> Iterator[_NewFiles]:
    """New weights files that are deleted again if the block fails."""
    new_files = _NewFiles()
    try:
        yield new_files
    except BaseException:
        for field in new_files.fields:
            weights_delete(field)
        raise


@contextmanager
def _atomic_with_files() -> Iterator[_NewFiles]:
    """A transaction whose new weights files are deleted if it does not commit."""
    with _files_undone_on_failure() as new_files, transaction.atomic():
        yield new_files


def _delete_files_on_commit(files: Iterable[FieldFile]) -> None:
    for field in list(files):
        transaction.on_commit(partial(weights_delete, field))


def client_create() -> Client:
    """A new client with a fresh uuid."""
    return Client.objects.create()


def client_register(*, model: FederatedModel, client: Client | None = None) -> Client:
    """Register ``client`` (a new one when None) to ``model``; registering twice changes nothing."""
    with transaction.atomic():
        if client is None:
            client = client_create()
        model.clients.add(client)
    return client


def _artifact_create(
    *, new_files: _NewFiles, model: FederatedModel, weights: TensorSource, version: str
) -> ModelArtifact:
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
    update_max_norm: float | None = None,
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
            update_max_norm=update_max_norm,
            structure=None if initial_model is None else initial_model.structure.to_json(),
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


def _check_update_structure(*, model: FederatedModel, weights: TensorSource, check_dtypes: bool) -> None:
    """Raise a 400 on ``data`` naming the first tensor that differs from the model's structure."""
    expected = selectors.model_structure(model=model)
    if expected is None:
        return
    try:
        check_structure(expected, weights.structure, compare_dtypes=check_dtypes)
    except InvalidWeightsError as error:
        raise ApplicationError(str(error), field="data") from None


def _check_update_norm(*, model: FederatedModel, weights: TensorSource) -> None:
    """Raise a 400 on ``data`` when the update's L2 norm is beyond the model's ``update_max_norm``."""
    if model.update_max_norm is None:
        return
    norm = l2_norm(weights)
    if norm > model.update_max_norm:
        raise ApplicationError(
            f"the update's L2 norm {norm:.6g} is greater than the model's update_max_norm {model.update_max_norm:g}",
            field="data",
        )


def _model_adopt_structure(*, model: FederatedModel, structure: Structure) -> None:
    """Make ``structure`` the model's (which has none yet); a concurrent first update's is kept and checked."""
    if FederatedModel.objects.filter(pk=model.pk, structure__isnull=True).update(structure=structure.to_json()):
        model.structure = structure.to_json()
        return
    # Another first update won the race: this one must have its structure.
    model.structure = FederatedModel.objects.values_list("structure", flat=True).get(pk=model.pk)
    try:
        check_structure(Structure.from_json(model.structure), structure, compare_dtypes=False)
    except InvalidWeightsError as error:
        raise ApplicationError(str(error), field="data") from None


def update_create(
    *,
    model: FederatedModel,
    client: Client,
    weights: TensorSource,
    base_aggregate: ModelAggregate | None = None,
    num_examples: int = 1,
    check_dtypes: bool = False,
) -> ModelUpdate:
    """Store a pending update of ``client`` for ``model`` and ask for an aggregation once committed.

    The client must be registered to the model, ``base_aggregate`` must be one of the model's, and
    the weights must have the model's structure when it has one (checked against the model's row, no
    file is read); otherwise their structure becomes the model's. ``check_dtypes`` compares dtypes as
    well: binary weights have the client's dtypes, a JSON document's numbers have none of their own.
    """
    if not selectors.client_is_registered(model=model, client=client):
        raise NotRegisteredError(f"Client {client.uuid} is not registered to model {model.pk}.")
    if base_aggregate is not None and base_aggregate.federated_model_id != model.pk:
        raise ApplicationError(
            f"Aggregate {base_aggregate.pk} is not an aggregate of model {model.pk}.", field="base_aggregate"
        )
    _check_update_structure(model=model, weights=weights, check_dtypes=check_dtypes)
    _check_update_norm(model=model, weights=weights)
    if isinstance(weights, Weights) and model.structure is not None:
        weights = conform_json_names(weights, Structure.from_json(model.structure))
    with _files_undone_on_failure() as new_files:
        update = ModelUpdate(
            federated_model=model, client=client, base_aggregate=base_aggregate, num_examples=num_examples
        )
        new_files.save(update.data, weights)
        # The related rows were checked above; validating them again would cost a query each.
        update.full_clean(exclude=["client", "federated_model", "base_aggregate", "applied_aggregate"])
        if model.structure is None:
            # The first update's structure becomes the model's, in one transaction with the update's row.
            with transaction.atomic():
                _model_adopt_structure(model=model, structure=weights.structure)
                update.save()
        else:
            # A single INSERT needs no transaction of its own: 4 queries in all with authentication.
            update.save()
        transaction.on_commit(partial(_update_stored, model=model))
    return update


def _update_stored(*, model: FederatedModel) -> None:
    # The schedule first: should the trigger's aggregation be lost, the sweep is already armed.
    schedule_wake(model=model)
    triggers.request_aggregation(model_id=model.pk)


def update_change(*, update: ModelUpdate, changes: dict[str, Any]) -> ModelUpdate:
    """Change an update's status (the only field a developer may set after creation).

    A change of status clears ``status_reason``.
    An update marked invalid no longer sets the structure of a model that has no other weights yet: its
    oldest update still usable does (so one update of another shape cannot make every aggregation fail).
    """
    with transaction.atomic():
        if "status" in changes and changes["status"] != update.status:
            # The reason was the workflow's, for the status it set; a developer's change supersedes it.
            update.status_reason = ""
        for field, value in changes.items():
            setattr(update, field, value)
        update.full_clean()
        update.save()
        if update.status == ModelUpdate.Status.INVALID:
            _model_restructure_from_updates(model=update.federated_model)
    return update


def _model_restructure_from_updates(*, model: FederatedModel) -> None:
    if model.artifacts.exists() or model.aggregates.exists():
        return
    first = model.updates.exclude(status=ModelUpdate.Status.INVALID).order_by("created_on", "id").first()
    structure = None if first is None else first.structure
    if structure != model.structure:
        FederatedModel.objects.filter(pk=model.pk).update(structure=structure)
        model.structure = structure


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
    weights = weights_open(aggregate.result)
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


def aggregate_orphans_delete(*, written_before: datetime) -> list[str]:
    """Delete result files that no aggregate points at, written before ``written_before``; their names.

    A run killed between writing its result and recording the aggregate leaves such a file (its updates are
    reclaimed and aggregated again). A result younger than the lease may belong to a run still recording it.
    """
    field = ModelAggregate._meta.get_field("result")
    storage, folder = field.storage, str(field.upload_to).rstrip("/")
    try:
        _, names = storage.listdir(folder)
    except FileNotFoundError:
        return []
    old = [f"{folder}/{name}" for name in names if storage.get_modified_time(f"{folder}/{name}") < written_before]
    recorded = set(ModelAggregate.objects.filter(result__in=old).values_list("result", flat=True))
    orphans = [name for name in old if name not in recorded]
    for name in orphans:
        storage.delete(name)
    return orphans
