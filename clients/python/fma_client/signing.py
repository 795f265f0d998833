"""Signed requests, for models with ``client_auth: "signed"``: the client's Ed25519 key and its signatures.

Requests are signed as RFC 9421 (HTTP Message Signatures) has it, with Ed25519, by the
``http-message-signatures`` library; the body is bound by RFC 9530's ``Content-Digest`` (``sha-256``). The
service's ``docs/security.md`` and the security schemes ``Signature``/``Signature-Input``/``Content-Digest`` of
its OpenAPI description (``/api/schema/``) say what it checks; in short, each signature covers:

- ``@method`` and ``@target-uri``: the URL as sent, except that a path below the service's root (an API
  Gateway stage, ``/Prod/``) is left out, since the service never sees it; the path percent-encoded where
  RFC 3986 requires only (the signer sends it so), the query exactly as sent;
- ``client-uuid`` (once the client has one) and ``content-digest`` (when there is a body);
- the parameters ``created`` (now), ``nonce`` (fresh, random) and ``keyid``: the client's uuid, or, when a new
  client registers (without a uuid), the public key it registers, which proves that it holds the key.

Keys are kept as unencrypted PKCS#8 PEM files, readable only by their owner (``load_or_create_key``).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from requests import PreparedRequest
from requests.auth import AuthBase

from fma_client.errors import FMAClientError

CLIENT_HEADER = "CLIENT-UUID"
# The signature's label in ``Signature-Input`` and ``Signature`` (any label is taken; one signature per request).
LABEL = "fma"
# Characters a path keeps unencoded: RFC 3986 ``pchar`` and ``/``; the service encodes the path it reads so.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SIGNATURE_FIELDS = ("signature", "signature-input", "content-digest")


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


def canonical_path(path: str) -> str:
    """``path`` percent-encoded as the service rebuilds it to check a signature (decoded, then encoded anew)."""
    return quote(unquote(path), safe=_PATH_SAFE)


@dataclass
class _Message:
    """A request as ``http-message-signatures`` signs it: its URL as signed, its (live) headers."""

    method: str
    url: str
    headers: MutableMapping[str, str]


def sign(
    key: Ed25519PrivateKey,
    *,
    method: str,
    url: str,
    headers: MutableMapping[str, str],
    body: bytes,
    key_id: str,
    created: int | None = None,
    nonce: str | None = None,
) -> None:
    """Sign a request: add ``Signature-Input``, ``Signature`` and (with a body) ``Content-Digest`` to ``headers``.

    ``url`` is the target URI as signed (see the module's docstring); ``headers`` must hold ``CLIENT-UUID``
    when the client has one. ``created`` (now) and ``nonce`` (fresh) are given only to build stale or replayed
    requests.
    """
    for name in [name for name in headers if name.lower() in _SIGNATURE_FIELDS]:
        del headers[name]
    covered = ["@method", "@target-uri"]
    if any(name.lower() == CLIENT_HEADER.lower() for name in headers):
        covered.append(CLIENT_HEADER.lower())
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}),
    )
    signer.sign(
        _Message(method.upper(), url, headers),
        key_id=key_id,
        created=datetime.fromtimestamp(time.time() if created is None else created, tz=UTC),
        nonce=secrets.token_urlsafe(24) if nonce is None else nonce,
        label=LABEL,
        covered_component_ids=covered,
        # With a body the library adds its Content-Digest and covers it.
        body=body or None,
    )


class RequestSigner(AuthBase):
    """requests' hook that signs each request as it leaves, so a retry is signed afresh (new time and nonce).

    ``service_url`` is the service's root: a path below it (an API Gateway stage, ``/Prod/``) is not part of
    what the service sees, hence not of what is signed. The path is sent as it is signed (:func:`canonical_path`).
    """

    def __init__(self, key: Ed25519PrivateKey, service_url: str) -> None:
        self.key = key
        self._root = unquote(urlsplit(service_url).path).rstrip("/")

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        parts = urlsplit(request.url or "")
        path = unquote(parts.path)
        below = path[len(self._root) :] if self._root and path.startswith(self._root + "/") else path
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise FMAClientError(f"cannot sign a streamed body ({request.method} {request.url})")
        request.url = urlunsplit(parts._replace(path=canonical_path(path)))
        # The authority as the Host header carries it: no user information, no default port.
        authority = parts.netloc.rpartition("@")[2]
        if parts.port is not None and parts.port == _DEFAULT_PORTS.get(parts.scheme):
            authority = authority.rpartition(":")[0]
        signed_url = urlunsplit((parts.scheme, authority, canonical_path(below), parts.query, ""))
        key_id = request.headers.get(CLIENT_HEADER) or public_key_text(self.key)
        sign(
            self.key, method=request.method or "GET", url=signed_url, headers=request.headers, body=body, key_id=key_id
        )
        return request
