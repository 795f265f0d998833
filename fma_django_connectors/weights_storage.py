"""Weights files in Django's storage (local disk by default, S3 remotely), in the core's binary form."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile

from fma_core.serialization import Weights, weights_from_file, weights_to_bytes


def weights_save(*, field: FieldFile, weights: Weights) -> None:
    """Write ``weights`` to a new file under the field's ``upload_to`` (the row itself is not saved)."""
    field.save(f"{uuid.uuid4().hex}.npz", ContentFile(weights_to_bytes(weights)), save=False)


def weights_load(field: FieldFile) -> Weights:
    """Read the weights a file field points at."""
    with field.open("rb") as stream:
        return weights_from_file(stream)


def weights_delete(field: FieldFile) -> None:
    """Remove the file behind a field, if any (used to undo a write whose row was not saved)."""
    if field.name:
        field.storage.delete(field.name)
