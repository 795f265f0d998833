"""Weights in responses, within what a Lambda function can return (``FMA_RESPONSE_MAX_BYTES``, 6 MB).

JSON stays the default and unchanged up to the limit; beyond it a ``413`` names the binary formats.
``?format=safetensors|npz|json`` on the weights routes answers the weights themselves in that format:
inline when they fit, else a ``303`` to a signed, expiring download URL. Lists never inline weights:
they carry the URL of the route that serves them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.reverse import reverse

from fma_core.serialization import Weights, weights_to_json
from fma_core.tensors import encode_npz, encode_safetensors
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.exceptions import ApplicationError, ResponseTooLargeError
from fma_django_connectors.storage import transfers
from fma_django_connectors.storage.weights_storage import EXTENSION as STORED_EXTENSION
from fma_django_connectors.storage.weights_storage import weights_load

SAFETENSORS = "safetensors"
NPZ = "npz"
JSON = "json"
BINARY_FORMATS = (SAFETENSORS, NPZ)
FORMATS = (*BINARY_FORMATS, JSON)
_ENCODERS: dict[str, Callable[[Weights], bytes]] = {
    SAFETENSORS: encode_safetensors,
    NPZ: encode_npz,
    JSON: weights_to_json,
}
_MEDIA_TYPES = {SAFETENSORS: "application/octet-stream", NPZ: "application/octet-stream", JSON: "application/json"}
# Storage folder of downloads too large to answer inline, kept while their URLs are valid.
DOWNLOADS_FOLDER = "downloads"
# Header naming the aggregate whose weights a response carries (absent when they are an artifact's).
AGGREGATE_HEADER = "FMA-Aggregate-Id"
ARTIFACT_HEADER = "FMA-Artifact-Id"
# Room left in a Lambda response for its status, headers and the document around the body.
_RESPONSE_HEADROOM = 16 * 1024
# The shortest a number can be in a JSON list ("0,"): weights with more numbers than the limit allows
# at that size are refused before they are read.
_MIN_JSON_BYTES_PER_NUMBER = 2


def json_body_limit() -> int:
    """Largest JSON body a response may carry."""
    return fma_settings.FMA_RESPONSE_MAX_BYTES - _RESPONSE_HEADROOM


def binary_body_limit() -> int:
    """Largest binary body a response may carry inline: API Gateway's Lambda integration base64-encodes it (4/3)."""
    return json_body_limit() * 3 // 4


def requested_format(request: Request) -> str | None:
    """``?format=`` of the request (None when absent); an unknown one is a 400 naming the choices."""
    value = request.query_params.get("format")
    if value is None or value in FORMATS:
        return value
    raise ApplicationError(f"Unknown format {value!r}; one of {', '.join(FORMATS)}.", field="format")


def too_large_for_json(*, size: int | None, url: str | None) -> ResponseTooLargeError:
    """The 413 of weights whose JSON does not fit a response, naming the binary formats (and where to ask)."""
    where = f"GET {url}?format=safetensors (or npz)" if url else "?format=safetensors or ?format=npz"
    amount = f"{size} bytes" if size is not None else "more"
    return ResponseTooLargeError(
        f"These weights take {amount} as JSON, more than the {json_body_limit()} bytes a response may carry. "
        f"Ask for a binary format instead: {where}; large weights are answered with a 303 redirect to a "
        "download URL."
    )


def weights_json(field: FieldFile, *, url: str | None = None) -> orjson.Fragment:
    """The stored weights as their JSON document, rendered once; a 413 when it cannot fit a response."""
    # The row knows its parameter count: weights far too large are refused without reading the file.
    if (getattr(field.instance, "parameter_count", None) or 0) * _MIN_JSON_BYTES_PER_NUMBER > json_body_limit():
        raise too_large_for_json(size=None, url=url)
    document = weights_to_json(weights_load(field))
    if len(document) > json_body_limit():
        raise too_large_for_json(size=len(document), url=url)
    return orjson.Fragment(document)


def weights_url(request: Request, *, route: str, pk: Any) -> str:
    """Absolute URL of the route serving one row's weights (``route`` as the router names it)."""
    return reverse(route, args=[pk], request=request)


def weights_download(
    request: Request, field: FieldFile, *, fmt: str, headers: dict[str, str], name: str
) -> HttpResponse:
    """The weights of ``field`` as a ``fmt`` file: inline when it fits a response, else a 303 to a download URL.

    Stored weights are safetensors already: asked for as such, the stored file itself is answered or
    linked to. Other formats are encoded, and stored for the download when too large to answer inline.
    """
    filename = f"{name}.{fmt}"
    limit = json_body_limit() if fmt == JSON else binary_body_limit()
    if fmt == SAFETENSORS and field.name.endswith(STORED_EXTENSION):
        if field.size > limit:
            return _redirect(request, field.name, filename=filename, headers=headers)
        with field.open("rb") as stored:
            body = stored.read()
    else:
        body = _ENCODERS[fmt](weights_load(field))
        if len(body) > limit:
            return _redirect(request, _download_file_save(body, fmt=fmt), filename=filename, headers=headers)
    response = HttpResponse(body, content_type=_MEDIA_TYPES[fmt], headers=headers)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _redirect(request: Request, stored: str, *, filename: str, headers: dict[str, str]) -> HttpResponse:
    """A 303 to a signed URL of the stored file (presigned S3 GET; locally the local server's route)."""
    url = transfers.download_url(
        stored,
        expires_in=fma_settings.FMA_DOWNLOAD_LIFETIME_SECONDS,
        base_url=request.build_absolute_uri("/"),
        filename=filename,
    )
    return JsonResponse({"url": url}, status=status.HTTP_303_SEE_OTHER, headers={**headers, "Location": url})


def _download_file_save(body: bytes, *, fmt: str) -> str:
    """Store a download too large to answer inline; removed once its URL has expired (``download_files_cleanup``)."""
    download_files_cleanup()
    return default_storage.save(f"{DOWNLOADS_FOLDER}/{uuid.uuid4().hex}.{fmt}", ContentFile(body))


def download_files_cleanup() -> int:
    """Remove the stored downloads whose URLs have expired; returns how many."""
    try:
        _, names = default_storage.listdir(DOWNLOADS_FOLDER)
    except FileNotFoundError:
        return 0
    oldest = timezone.now() - timedelta(seconds=fma_settings.FMA_DOWNLOAD_LIFETIME_SECONDS)
    expired = [
        f"{DOWNLOADS_FOLDER}/{name}"
        for name in names
        if default_storage.get_modified_time(f"{DOWNLOADS_FOLDER}/{name}") < oldest
    ]
    for stored in expired:
        default_storage.delete(stored)
    return len(expired)
