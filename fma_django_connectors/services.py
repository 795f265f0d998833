"""Every write of the API. Keyword-only functions named ``<entity>_<action>``.

A service that writes weights files removes them again when it fails, so a rejected request leaves
neither a row nor a file behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from fma_core.exceptions import FMAError, InvalidWeightsError
from fma_core.serialization import Structure, Weights, check_structure, conform_json_names
from fma_core.tensors import TensorSource, l2_norm
from fma_django_connectors import selectors
from fma_django_connectors.aggregation import triggers
from fma_django_connectors.aggregation.schedules import schedule_remove, schedule_sync, schedule_wake
from fma_django_connectors.client_ids import client_label
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.exceptions import (
    ApplicationError,
    DuplicateError,
    NotRegisteredError,
    UploadExpiredError,
    UploadGoneError,
    UploadNotReceivedError,
)
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
    Upload,
)
from fma_django_connectors.schemas import check_document
from fma_django_connectors.storage.upload_checks import upload_check_received, upload_check_values, upload_tensors
from fma_django_connectors.storage.weights_storage import structure_columns, weights_delete, weights_open, weights_save

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


def _duplicate_version(*, model: FederatedModel, version: str) -> DuplicateError:
    return DuplicateError(f"Model {model.pk} already has an artifact of version {version!r}.", field="version")


def artifact_check_version(*, model: FederatedModel, version: str) -> None:
    """Raise ``DuplicateError`` when ``model`` already has an artifact of ``version``."""
    if model.artifacts.filter(version=version).exists():
        raise _duplicate_version(model=model, version=version)


def _artifact_create(
    *,
    new_files: _NewFiles,
    model: FederatedModel,
    weights: TensorSource,
    version: str,
    aggregate: ModelAggregate | None = None,
) -> ModelArtifact:
    duplicate = _duplicate_version(model=model, version=version)
    artifact_check_version(model=model, version=version)
    artifact = ModelArtifact(federated_model=model, version=version, aggregate=aggregate)
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
    """Delete a model with everything under it, its schedule, and (once committed) its weights files and the
    bytes of its pending uploads."""
    files = selectors.model_weight_files(model=model)
    upload_bytes = list(model.uploads.values_list("bytes_name", flat=True))
    with transaction.atomic():
        schedule_remove(model_id=model.pk)
        model.delete()
        _delete_files_on_commit(files)
        for name in upload_bytes:
            transaction.on_commit(partial(default_storage.delete, name))


def _with_model_names(*, model: FederatedModel, weights: TensorSource) -> TensorSource:
    """A JSON document's layers named as the model's tensors (``conform_json_names``); anything else as it is."""
    if isinstance(weights, Weights) and model.structure is not None:
        return conform_json_names(weights, Structure.from_json(model.structure))
    return weights


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


def update_check_target(*, model: FederatedModel, client: Client, base_aggregate: ModelAggregate | None) -> None:
    """Raise unless ``client`` may send an update of ``model`` based on ``base_aggregate`` (no weights needed)."""
    if not selectors.client_is_registered(model=model, client=client):
        raise NotRegisteredError(
            f"Client {client_label(client.uuid, model=model)} is not registered to model {model.pk}."
        )
    if base_aggregate is not None and base_aggregate.federated_model_id != model.pk:
        raise ApplicationError(
            f"Aggregate {base_aggregate.pk} is not an aggregate of model {model.pk}.", field="base_aggregate"
        )


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
    update_check_target(model=model, client=client, base_aggregate=base_aggregate)
    _check_update_structure(model=model, weights=weights, check_dtypes=check_dtypes)
    _check_update_norm(model=model, weights=weights)
    weights = _with_model_names(model=model, weights=weights)
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
        artifact = _artifact_create(
            new_files=new_files, model=model, weights=weights, version=version, aggregate=aggregate
        )
        _artifact_make_current(model=model, artifact=artifact)
    return artifact


def score_create(*, aggregate: ModelAggregate, client: Client, validation_results: Any) -> ClientAggregateScore:
    """Record ``client``'s validation of ``aggregate``; one score per (aggregate, client)."""
    model = aggregate.federated_model
    if not selectors.client_is_registered(model=model, client=client):
        raise NotRegisteredError(
            f"Client {client_label(client.uuid, model=model)} is not registered to model {model.pk}."
        )
    duplicate = DuplicateError(
        f"Client {client_label(client.uuid, model=model)} has already scored aggregate {aggregate.pk}."
    )
    if ClientAggregateScore.objects.filter(aggregate=aggregate, client=client).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return ClientAggregateScore.objects.create(
                aggregate=aggregate, client=client, validation_results=validation_results
            )
    except IntegrityError:
        raise duplicate from None


# Expired uploads removed by each new upload, so that abandoned ones do not pile up between runs of
# Where an upload's bytes wait for their completion (the stacks expire leftovers under it).
UPLOADS_FOLDER = "uploads"
# ``manage.py cleanup_uploads``; bounded so that one request never does much of the sweeping.
UPLOAD_CLEANUP_BATCH = 20


def model_check_without_weights(*, model: FederatedModel) -> None:
    """Raise unless ``model`` has no weights yet (no artifact, aggregate or update), as an initial model needs."""
    if model.current_artifact_id is not None or any(
        related.exists() for related in (model.artifacts, model.aggregates, model.updates)
    ):
        raise ApplicationError(
            f"Model {model.pk} already has weights; an initial_model is only for a model without any "
            "(upload an artifact, or publish an aggregate, instead).",
            field="purpose",
        )


def upload_create(
    *,
    model: FederatedModel,
    purpose: str,
    format: str,
    size: int,
    sha256: str = "",
    developer: Any = None,
    client: Client | None = None,
    base_aggregate: ModelAggregate | None = None,
    num_examples: int = 1,
    version: str = "",
) -> Upload:
    """Record an upload once every rule that does not need its bytes holds; the bytes are sent afterwards.

    ``developer`` is the developer making it (None for a client); ``client`` the update's client.
    """
    upload_cleanup_expired(limit=UPLOAD_CLEANUP_BATCH)
    if purpose == Upload.Purpose.UPDATE:
        update_check_target(model=model, client=client, base_aggregate=base_aggregate)
    elif purpose == Upload.Purpose.INITIAL_MODEL:
        model_check_without_weights(model=model)
    else:
        artifact_check_version(model=model, version=version)
    upload_id = uuid.uuid4()
    upload = Upload(
        id=upload_id,
        federated_model=model,
        purpose=purpose,
        format=format,
        size=size,
        sha256=sha256,
        developer=developer,
        client=client if purpose == Upload.Purpose.UPDATE else None,
        base_aggregate=base_aggregate if purpose == Upload.Purpose.UPDATE else None,
        num_examples=num_examples,
        version=version if purpose == Upload.Purpose.ARTIFACT else "",
        bytes_name=f"{UPLOADS_FOLDER}/{upload_id.hex}.{format}",
        expires_at=timezone.now() + timedelta(seconds=fma_settings.FMA_UPLOAD_LIFETIME_SECONDS),
    )
    upload.full_clean()
    upload.save()
    return upload


def upload_complete(*, upload: Upload) -> tuple[ModelUpdate | ModelArtifact, bool]:
    """Turn an upload's bytes into its update (``PENDING``) or artifact, once: returns it and whether it is new.

    Completing again returns what the first completion made; concurrent completions wait for each other
    (a row lock), so one upload never makes two updates. A refused upload is removed with its bytes,
    except one whose bytes have not arrived yet (they may still be sent).
    """
    try:
        with _atomic_with_files() as new_files:
            locked = Upload.objects.select_for_update().filter(pk=upload.pk).first()
            if locked is None:
                raise UploadGoneError(f"Upload {upload.pk} was refused and removed meanwhile; make a new one.")
            upload = locked
            if upload.completed_on is not None:
                return _upload_result(upload), False
            if upload.expires_at <= timezone.now():
                raise UploadExpiredError(
                    f"Upload {upload.pk} expired at {upload.expires_at.isoformat()}; make a new one.", field="detail"
                )
            made = _upload_store(new_files=new_files, upload=upload)
            upload.completed_on = timezone.now()
            upload.save(update_fields=["completed_on", "update", "artifact"])
    except (UploadNotReceivedError, UploadGoneError):
        raise
    except (ApplicationError, FMAError):
        upload_discard(upload=upload)
        raise
    # Stored as weights now: the uploaded bytes are no longer needed.
    default_storage.delete(upload.bytes_name)
    return made, True


def _upload_result(upload: Upload) -> ModelUpdate | ModelArtifact:
    made = upload.update or upload.artifact
    if made is None:
        raise ApplicationError(f"What upload {upload.pk} made has been deleted since.", field="detail")
    return made


def _upload_store(*, new_files: _NewFiles, upload: Upload) -> ModelUpdate | ModelArtifact:
    """Check the upload's bytes (size, digest, format, structure, values) and store them as weights."""
    model = upload.federated_model
    upload_check_received(upload)
    binary = upload.format != Upload.Format.JSON
    schema = model.update_schema if upload.purpose == Upload.Purpose.UPDATE else None
    tensors = upload_tensors(upload, check_document=partial(check_document, schema=schema, field="data"))
    # The structure first: it is in the header, while finiteness reads every tensor.
    if upload.purpose != Upload.Purpose.INITIAL_MODEL:
        _check_update_structure(model=model, weights=tensors, check_dtypes=binary)
    upload_check_values(tensors)
    if upload.purpose == Upload.Purpose.UPDATE:
        assert upload.client is not None  # every update upload names its client
        upload.update = update_create(
            model=model,
            client=upload.client,
            weights=tensors,
            base_aggregate=upload.base_aggregate,
            num_examples=upload.num_examples,
            check_dtypes=binary,
        )
        # Written outside ``new_files``: removed again if the completion fails after all.
        new_files.fields.append(upload.update.data)
        return upload.update
    if upload.purpose == Upload.Purpose.INITIAL_MODEL:
        model_check_without_weights(model=model)
        _model_adopt_structure(model=model, structure=tensors.structure)
        version = INITIAL_ARTIFACT_VERSION
    else:
        tensors = _with_model_names(model=model, weights=tensors)
        version = upload.version
    upload.artifact = _artifact_create(new_files=new_files, model=model, weights=tensors, version=version)
    _artifact_make_current(model=model, artifact=upload.artifact)
    return upload.artifact


def upload_discard(*, upload: Upload) -> None:
    """Remove an upload that will not be completed, and its bytes."""
    Upload.objects.filter(pk=upload.pk).delete()
    default_storage.delete(upload.bytes_name)


def upload_cleanup_expired(*, limit: int | None = None) -> int:
    """Remove expired uploads (at most ``limit``) and their bytes; returns how many were removed.

    Rows another transaction holds (a completion in progress) are skipped; bytes are deleted once the
    rows are.
    """
    with transaction.atomic():
        expired = Upload.objects.select_for_update(skip_locked=True).filter(expires_at__lte=timezone.now())
        names = list(expired.order_by("expires_at").values_list("pk", "bytes_name")[:limit])
        Upload.objects.filter(pk__in=[pk for pk, _ in names]).delete()
    for _, name in names:
        default_storage.delete(name)
    return len(names)


def aggregate_orphans_delete(*, written_before: datetime) -> list[str]:
    """Delete result files that no aggregate points at, written before ``written_before``; their names.

    A run takes back an expired claim and deletes the result its dead run may have written, by the claim's name
    (``DjangoModelDataConnector.aggregate_result_ref``). This sweep lists the folder instead: it finds results
    stored under the names used before (a uuid), and one a run slower than its lease stored after its claim was
    taken back and was killed before deleting. A result younger than the lease may belong to a run still
    recording it. Files no aggregate records are the only ones whose age is asked (one request each on S3).
    """
    field = ModelAggregate._meta.get_field("result")
    storage, folder = field.storage, str(field.upload_to).rstrip("/")
    try:
        _, names = storage.listdir(folder)
    except FileNotFoundError:
        return []
    # Every recorded name at once: the folder may hold more names than a query may bind (SQLite: 32766).
    recorded = set(ModelAggregate.objects.values_list("result", flat=True).iterator())
    unrecorded = [f"{folder}/{name}" for name in names if f"{folder}/{name}" not in recorded]
    orphans = [name for name in unrecorded if storage.get_modified_time(name) < written_before]
    for name in orphans:
        storage.delete(name)
    return orphans
