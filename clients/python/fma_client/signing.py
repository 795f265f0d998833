"""Signed requests, for models with ``client_auth: "signed"``: the client's Ed25519 key and its signatures.

The service documents the scheme in its OpenAPI schema (security scheme ``fmaSignature`` of
``/api/schema/``). Each request to the API carries, beside ``CLIENT-UUID``, ``FMA-Timestamp`` (seconds since
the epoch), ``FMA-Nonce`` (fresh, random) and ``FMA-Signature``: the base64 Ed25519 signature of::

    FMA-SIG-V1\\n<METHOD>\\n<path?query>\\n<timestamp>\\n<nonce>\\n<sha256 hex of the body>

with the path relative to the service's root and the query pairs sorted and percent-encoded. This package
is installed without the service, so the few lines of the scheme are written here again; the tests run
them against the real service.

Keys are kept as unencrypted PKCS#8 PEM files, readable only by their owner (``load_or_create_key``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from requests import PreparedRequest
from requests.auth import AuthBase

from fma_client.errors import FMAClientError

TIMESTAMP_HEADER = "FMA-Timestamp"
NONCE_HEADER = "FMA-Nonce"
SIGNATURE_HEADER = "FMA-Signature"
SIGNATURE_VERSION = "FMA-SIG-V1"


class KeyFileError(FMAClientError):
    """A key file that cannot be read as an unencrypted Ed25519 private key in PEM."""


def generate_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key (keep it: the service knows the client by its public half)."""
    return Ed25519PrivateKey.generate()


def save_key(key: Ed25519PrivateKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` to a new file ``path`` (PKCS#8 PEM, mode 0600); an existing file is never overwritten.

    Raises
    ------
    FileExistsError
        ``path`` exists.
    """
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


def load_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key of the PEM file ``path`` (as ``save_key`` writes it).

    Raises
    ------
    KeyFileError
        The file holds no unencrypted Ed25519 private key.
    """
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_or_create_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The key of the file ``path``; a new key, saved there, when the file does not exist yet."""
    try:
        return load_key(path)
    except FileNotFoundError:
        pass
    key = generate_key()
    try:
        save_key(key, path)
    except FileExistsError:  # another process made it first: use that one
        return load_key(path)
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key (of a private ``key``: its public half) as the service takes it: base64 of its 32 raw bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def canonical_target(path: str, query: str = "") -> str:
    """``path``, and the query's pairs sorted and percent-encoded, as the service rebuilds them to check."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{path}?{urlencode(pairs, quote_via=quote)}" if pairs else path


def signature_headers(
    key: Ed25519PrivateKey,
    *,
    method: str,
    target: str,
    body: bytes,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """``FMA-Timestamp``, ``FMA-Nonce`` and ``FMA-Signature`` of one request (now and a fresh nonce unless given).

    ``target`` is :func:`canonical_target` of the request's path (relative to the service's root) and query.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_urlsafe(24) if nonce is None else nonce
    lines = [SIGNATURE_VERSION, method.upper(), target, stamp, nonce, hashlib.sha256(body).hexdigest()]
    signature = base64.b64encode(key.sign("\n".join(lines).encode())).decode()
    return {TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: signature}


class RequestSigner(AuthBase):
    """requests' hook that signs each request as it leaves, so a retry is signed afresh (new time and nonce).

    ``service_url`` is the service's root: a path below it (an API Gateway stage, ``/Prod/``) is not part of
    what the service sees, hence not of what is signed.
    """

    def __init__(self, key: Ed25519PrivateKey, service_url: str) -> None:
        self.key = key
        self._root = unquote(urlsplit(service_url).path).rstrip("/")

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        parts = urlsplit(request.url or "")
        path = unquote(parts.path)
        if self._root and path.startswith(self._root + "/"):
            path = path[len(self._root) :]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise FMAClientError(f"cannot sign a streamed body ({request.method} {request.url})")
        request.headers.update(
            signature_headers(
                self.key, method=request.method or "GET", target=canonical_target(path, parts.query), body=body
            )
        )
        return request
