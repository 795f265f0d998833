"""Checks of an upload's bytes in storage: size, SHA-256 (streamed), format and content; nothing is ever unpickled.

Each refusal is an ``ApplicationError`` naming the problem; the service that completes the upload
then removes it with its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from django.core.files.storage import default_storage

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import parse_weights
from fma_core.tensors import TensorSource, check_values, parse_npz, parse_safetensors
from fma_django_connectors.exceptions import ApplicationError, UploadNotReceivedError
from fma_django_connectors.models import Upload
from fma_django_connectors.storage.weights_storage import stored_reader

# Bytes read at a time while hashing: a large upload is never held whole for its digest.
_CHUNK_BYTES = 1024 * 1024


def upload_check_received(upload: Upload) -> None:
    """Raise unless the upload's bytes are in storage with the announced size and digest."""
    storage = default_storage
    if not storage.exists(upload.bytes_name):
        raise UploadNotReceivedError(
            f"Upload {upload.pk} has no bytes yet: send them to its upload_url first, then complete it."
        )
    received = storage.size(upload.bytes_name)
    if received != upload.size:
        raise ApplicationError(
            f"The upload holds {received} bytes, but its size was given as {upload.size}.", field="size"
        )
    if upload.sha256:
        digest = hashlib.sha256()
        with storage.open(upload.bytes_name, "rb") as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                digest.update(chunk)
        if digest.hexdigest() != upload.sha256:
            raise ApplicationError(
                f"The upload's SHA-256 is {digest.hexdigest()}, not the {upload.sha256} given when it was made.",
                field="sha256",
            )


def upload_tensors(upload: Upload, *, check_document: Callable[[Any], None]) -> TensorSource:
    """The tensors in the upload's bytes, by its format; ``check_document`` sees a JSON upload's document first.

    safetensors is opened lazily (its header is checked; the tensors are read when used); npz and JSON
    are parsed whole. An npz holding a Python object (pickle) is refused, never loaded.
    """
    try:
        if upload.format == Upload.Format.SAFETENSORS:
            return parse_safetensors(stored_reader(default_storage, upload.bytes_name))
        with default_storage.open(upload.bytes_name, "rb") as stream:
            data = stream.read()
        if upload.format == Upload.Format.NPZ:
            return parse_npz(data)
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise InvalidWeightsError(f"not valid JSON: {error}") from None
        check_document(document)
        return parse_weights(document)
    except InvalidWeightsError as error:
        raise _invalid(upload, error) from None


def upload_check_values(tensors: TensorSource) -> None:
    """Raise naming the first tensor that is empty or holds NaN or infinity (read one tensor at a time)."""
    try:
        check_values(tensors)
    except InvalidWeightsError as error:
        raise ApplicationError(str(error), field="data") from None


def _invalid(upload: Upload, error: InvalidWeightsError) -> ApplicationError:
    return ApplicationError(f"The {upload.format} upload is not valid weights: {error}", field="data")
