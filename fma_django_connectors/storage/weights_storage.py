"""Weights files in Django's storage (local disk by default, S3 remotely), as safetensors.

Files are written through a spooled temporary file (on disk past a few MB), so a large result is never held
twice. Reading opens a file lazily: a local file by offsets (``storage.path``), an S3 object by ranged GETs
(``fma_core.aws.aws_client("s3")``), anything else through ``storage.open``. Files stored before safetensors
(``.npz``) still read, recognised by their content.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from typing import Any

from django.core.files import File
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile

from fma_core.serialization import Structure, Weights
from fma_core.tensors import (
    BytesRangeReader,
    FileRangeReader,
    RangeReader,
    S3RangeReader,
    TensorSource,
    load_stored,
    open_stored,
    write_safetensors,
)

# Past this size a file being written spills from memory to a temporary file on disk.
_SPOOL_BYTES = 8 * 1024 * 1024
EXTENSION = ".safetensors"


def weights_save(*, field: FieldFile, weights: TensorSource, stem: str | None = None) -> Structure:
    """Write ``weights`` as safetensors to a new file under the field's ``upload_to`` (the row is not saved).

    The file is named ``stem`` (a name nobody else writes) or a fresh uuid, with the safetensors extension.
    Returns the structure written, for the row's structure columns. A write that fails leaves no file.
    """
    filename = f"{stem or uuid.uuid4().hex}{EXTENSION}"
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as buffer:
        write_safetensors(weights, buffer)
        buffer.seek(0)
        try:
            field.save(filename, File(buffer), save=False)
        except BaseException:
            # A write that stopped partway (a full disk) leaves what it wrote under the name; no row will own it.
            # The name is a fresh uuid or the caller's own, so it can be nobody else's file.
            with contextlib.suppress(Exception):
                field.storage.delete(field.field.generate_filename(field.instance, filename))
            raise
    return weights.structure


def structure_columns(structure: Structure | None) -> dict[str, Any]:
    """The values of a weights row's structure columns (``structure``, ``parameter_count``, ``byte_size``)."""
    if structure is None:
        return {"structure": None, "parameter_count": None, "byte_size": None}
    return {
        "structure": structure.to_json(),
        "parameter_count": structure.parameter_count,
        "byte_size": structure.byte_size,
    }


def _s3_key(storage: Storage, name: str) -> str | None:
    # django-storages' S3Storage maps a name to its key so (S3Storage._open); other storages have no bucket.
    if not hasattr(storage, "bucket_name") or not hasattr(storage, "_normalize_name"):
        return None
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def stored_reader(storage: Storage, name: str) -> RangeReader:
    """A range reader over a stored file: offsets into a local file, ranged GETs on S3, else the whole file."""
    try:
        return FileRangeReader(storage.path(name))
    except NotImplementedError:
        pass
    key = _s3_key(storage, name)
    if key is not None:
        return S3RangeReader(storage.bucket_name, key)
    with storage.open(name, "rb") as stream:
        return BytesRangeReader(stream.read())


def weights_open(field: FieldFile) -> TensorSource:
    """The tensors a file field points at, read lazily."""
    return open_stored(stored_reader(field.storage, field.name))


def weights_load(field: FieldFile) -> Weights:
    """Every tensor a file field points at, in memory."""
    return load_stored(stored_reader(field.storage, field.name))


def weights_delete(field: FieldFile) -> None:
    """Remove the file behind a field, if any (used to undo a write whose row was not saved)."""
    if field.name:
        field.storage.delete(field.name)
