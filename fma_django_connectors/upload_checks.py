"""Checks of an upload's bytes in storage: size, SHA-256 (streamed), format and content; nothing is ever unpickled.

Each refusal is an ``ApplicationError`` naming the problem; the service that completes the upload
then removes it with its bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Weights, parse_weights
from fma_django_connectors.exceptions import ApplicationError, UploadNotReceivedError
from fma_django_connectors.models import Upload

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


def upload_weights(upload: Upload, *, check_document: Any) -> Weights:
    """The weights in the upload's bytes, parsed by its format; ``check_document`` sees a JSON document first."""
    with default_storage.open(upload.bytes_name, "rb") as stream:
        data = stream.read()
    try:
        if upload.format == Upload.Format.JSON:
            import orjson

            try:
                document = orjson.loads(data)
            except orjson.JSONDecodeError as error:
                raise InvalidWeightsError(f"not valid JSON: {error}") from None
            check_document(document)
            return parse_weights(document)
        raise InvalidWeightsError(f"format {upload.format} is not readable yet")
    except InvalidWeightsError as error:
        raise ApplicationError(f"The {upload.format} upload is not valid weights: {error}", field="data") from None
