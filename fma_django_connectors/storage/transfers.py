"""Signed, expiring URLs that move bytes into and out of the default storage without passing through the
API handler, whose requests and responses Lambda caps at 6 MB.

Two backends, chosen by the storage in use:

- S3 (``storages.backends.s3.S3Storage``, the deployed stacks): presigned ``PUT``/``GET`` URLs of the
  bucket itself (signature version 4; the upload URL signs its ``Content-Length``, so S3 refuses a body of
  another size). The bytes go between the caller and S3, never through the function. A URL made with a
  Lambda role's temporary credentials stops working when they expire, whatever ``expires_in`` says.
- Any other storage (the local server's folder): a URL of the service itself under
  :data:`LOCAL_TRANSFER_PATH`, carrying the storage name, the method, the exact size of an upload and the
  expiry, signed with ``SECRET_KEY``. ``api_service/local_server.py`` serves these outside the handler,
  streaming the body into storage as it arrives (:func:`receive`) and the file back (:func:`open_download`),
  as S3 would. The URL of an upload (``upload_id``) takes bytes only while that upload waits for them: once
  it is completed or removed, a PUT is refused before its body is read. A presigned S3 URL cannot be taken
  back that way; ``docs/security.md`` says what bounds it.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from django.core import signing
from django.core.files import File
from django.core.files.storage import storages
from django.db import connection

from fma_core.aws import aws_client
from fma_django_connectors.models import Upload

__all__ = [
    "LOCAL_TRANSFER_PATH",
    "LocalGrant",
    "TransferRefused",
    "TransferTarget",
    "check_length",
    "download_url",
    "open_download",
    "read_grant",
    "receive",
    "upload_url",
]

# Where the local server takes its signed transfers; outside every route of the API.
LOCAL_TRANSFER_PATH = "/local-transfers/"
# S3 refuses presigned URLs valid for longer than seven days; the local URLs keep the same bound.
MAX_EXPIRES_IN = 7 * 24 * 3600
_SALT = "fma_django_connectors.storage.transfers"


@dataclass(frozen=True)
class TransferTarget:
    """Where and how to send an upload's bytes: ``method`` to ``url`` with ``headers``, before ``expires_at``."""

    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class LocalGrant:
    """What a valid local transfer URL allows: ``method`` on ``name``, of exactly ``size`` bytes for a PUT."""

    name: str
    method: str
    size: int | None
    filename: str | None
    # The ``Upload`` whose bytes a PUT brings, when the URL was made for one.
    upload_id: str | None = None


class TransferRefused(Exception):
    """A local transfer that is not allowed or not possible; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def upload_url(name: str, *, size: int, expires_in: int, base_url: str, upload_id: str | None = None) -> TransferTarget:
    """A URL that takes exactly ``size`` bytes for storage name ``name`` during ``expires_in`` seconds.

    ``base_url`` is the service's own address as the caller reached it (``request.build_absolute_uri("/")``);
    the local URLs start with it, S3's are absolute already. The caller sends ``headers`` with the bytes. A
    local URL made for the ``Upload`` ``upload_id`` takes them only while that upload waits for them.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a whole number of bytes, not {size!r}")
    expires_at = _expiry(expires_in)
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    storage = _s3_storage()
    if storage is not None:
        url = _presign(storage, "put_object", name, expires_in, ContentLength=size)
    else:
        payload = {"n": name, "m": "PUT", "s": size, "e": int(expires_at.timestamp())}
        url = _local_url(base_url, payload if upload_id is None else {**payload, "u": upload_id})
    return TransferTarget(url=url, method="PUT", headers=headers, expires_at=expires_at)


def download_url(name: str, *, expires_in: int, base_url: str, filename: str | None = None) -> str:
    """A URL that serves storage name ``name`` during ``expires_in`` seconds (a download as ``filename`` if given)."""
    expires_at = _expiry(expires_in)
    storage = _s3_storage()
    if storage is not None:
        extra = {"ResponseContentDisposition": _attachment(filename)} if filename else {}
        return _presign(storage, "get_object", name, expires_in, **extra)
    return _local_url(base_url, {"n": name, "m": "GET", "e": int(expires_at.timestamp()), "f": filename})


def read_grant(token: str, *, method: str) -> LocalGrant:
    """The grant of a local transfer URL's token, for a request with ``method``; refused unless valid and current."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise TransferRefused(403, "This transfer URL is not valid: its signature does not match.") from None
    if payload["m"] != method:
        raise TransferRefused(403, f"This transfer URL is signed for {payload['m']}, not {method}.")
    if time.time() >= payload["e"]:
        expired = datetime.fromtimestamp(payload["e"], UTC).isoformat()
        raise TransferRefused(403, f"This transfer URL expired at {expired}.")
    grant = LocalGrant(
        name=payload["n"],
        method=payload["m"],
        size=payload.get("s"),
        filename=payload.get("f"),
        upload_id=payload.get("u"),
    )
    if grant.upload_id is not None:
        _check_upload_waits(grant.upload_id)
    return grant


def _check_upload_waits(upload_id: str) -> None:
    """Refuse the bytes of an upload that no longer waits for them: completed, or removed (refused, expired)."""
    try:
        upload = Upload.objects.filter(pk=upload_id).values("completed_on").first()
    finally:
        # Grants are read on the local server's connection threads, outside any request: the connection this
        # opened closes now, so that only the handler workers hold database connections while bodies arrive.
        if not connection.in_atomic_block:
            connection.close()
    unusable = "its URL takes no more bytes; make a new upload."
    if upload is None:
        raise TransferRefused(
            410, f"Upload {upload_id} no longer exists (refused, expired or its model deleted): {unusable}"
        )
    if upload["completed_on"] is not None:
        raise TransferRefused(409, f"Upload {upload_id} is completed: {unusable}")


def check_length(grant: LocalGrant, length: int) -> None:
    """Refuse an upload whose declared body length is not the size its URL was signed for."""
    if length != grant.size:
        raise TransferRefused(400, f"The body is {length} bytes; this upload URL takes exactly {grant.size} bytes.")


def receive(grant: LocalGrant, body: IO[bytes], length: int) -> None:
    """Store the ``length`` bytes of ``body`` under the grant's name as they arrive, never whole in memory.

    A length other than the signed size is refused before anything is read. A body that ends early (the
    client went away) leaves nothing behind (a 400), nor does a storage that fails to keep the bytes (a 503,
    as S3 answers when it cannot take them). An upload replaces what the name held, as an S3 PUT does.
    """
    check_length(grant, length)
    storage = storages["default"]
    if storage.exists(grant.name):
        storage.delete(grant.name)
    reader = _ExactReader(body, length)
    try:
        saved = storage.save(grant.name, File(reader, name=grant.name))
    except BaseException as error:
        with contextlib.suppress(OSError):
            storage.delete(grant.name)
        if reader.ended_early:
            raise TransferRefused(400, f"The body ended after {length - reader.remaining} of {length} bytes.") from None
        if isinstance(error, OSError):
            # The bytes were arriving; the storage could not keep them (a full disk): not the sender's fault.
            reason = error.strerror or type(error).__name__
            raise TransferRefused(
                503, f"The storage could not keep the bytes ({reason}); send them again later."
            ) from None
        raise
    if saved != grant.name:
        # Another upload to the same URL created the name meanwhile; ours went elsewhere and is dropped.
        storage.delete(saved)
        raise TransferRefused(409, "Another upload to this URL is in progress; try again.")


def open_download(grant: LocalGrant) -> tuple[IO[bytes], dict[str, str]]:
    """The stored file the grant names, open for reading, and the headers to send it with."""
    storage = storages["default"]
    try:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(storage.size(grant.name))}
        file = storage.open(grant.name, "rb")
    except FileNotFoundError:
        raise TransferRefused(404, "Nothing is stored under this transfer URL.") from None
    if grant.filename:
        headers["Content-Disposition"] = _attachment(grant.filename)
    return file, headers


class _ExactReader(io.RawIOBase):
    """Reads ``length`` bytes from ``stream`` and then reports the end, without reading past it.

    The request stream of a server does not end with the body (the connection may stay open), so reading
    it to its end would block; and a client that stops early must not pass for a complete upload.
    """

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self._stream = stream
        self.remaining = length
        # Whether the body stopped before ``length`` bytes (the client went away), as opposed to a failure of
        # whatever the bytes were written to.
        self.ended_early = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.remaining == 0:
            return b""
        wanted = self.remaining if size is None or size < 0 else min(size, self.remaining)
        try:
            data = self._stream.read(wanted)
        except BaseException:
            self.ended_early = True
            raise
        if not data:
            self.ended_early = True
            raise EOFError(f"the body ended {self.remaining} bytes early")
        self.remaining -= len(data)
        return data


def _s3_storage() -> Any:
    from storages.backends.s3 import S3Storage

    storage = storages["default"]
    return storage if isinstance(storage, S3Storage) else None


def _presign(storage: Any, operation: str, name: str, expires_in: int, **params: Any) -> str:
    from storages.utils import clean_name

    # The object key django-storages itself uses for the name (its location prefix included).
    key = storage._normalize_name(clean_name(name))
    client = aws_client("s3", region_name=storage.region_name)
    return client.generate_presigned_url(
        operation,
        Params={"Bucket": storage.bucket_name, "Key": key, **params},
        ExpiresIn=expires_in,
        HttpMethod="PUT" if operation == "put_object" else "GET",
    )


def _local_url(base_url: str, payload: dict[str, Any]) -> str:
    return f"{base_url.rstrip('/')}{LOCAL_TRANSFER_PATH}{signing.dumps(payload, salt=_SALT, compress=True)}"


def _expiry(expires_in: int) -> datetime:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 < expires_in <= MAX_EXPIRES_IN:
        raise ValueError(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds, not {expires_in!r}")
    return datetime.fromtimestamp(int(time.time()) + expires_in, UTC)


def _attachment(filename: str) -> str:
    # Quotes and backslashes cannot be escaped portably in a filename parameter.
    safe = filename.replace("\\", "_").replace('"', "_")
    return f'attachment; filename="{safe}"'
