"""Signed client requests (Ed25519): what a client signs, how it signs, how the service checks.

Shared by the service (which verifies) and any Python client or SDK (which signs); framework-free.

A request is signed over the canonical message::

    FMA-SIG-V1\\n<METHOD>\\n<path?query>\\n<timestamp>\\n<nonce>\\n<sha256 hex of the body>

where ``path?query`` is the path relative to the service root (``/api/v1/models/3/get_latest_model/``)
with the query pairs sorted and percent-encoded (:func:`canonical_target`), ``timestamp`` whole seconds
since the epoch and ``nonce`` a fresh random string of 16 to 128 URL-safe characters. The headers:

- ``CLIENT-UUID``: the client, as in unsigned requests;
- ``FMA-Timestamp``, ``FMA-Nonce``: as signed;
- ``FMA-Signature``: the Ed25519 signature of the message, base64 (standard alphabet).

The service refuses a timestamp more than ``MAX_SKEW_SECONDS`` away from its clock and a nonce it has
seen within that window (a replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from urllib.parse import parse_qsl, quote, unquote, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fma_core.exceptions import CallerError

__all__ = [
    "HEADERS",
    "MAX_SKEW_SECONDS",
    "NONCE_LIFETIME_SECONDS",
    "SIGNATURE_VERSION",
    "InvalidPublicKeyError",
    "canonical_message",
    "canonical_target",
    "parse_public_key",
    "public_key_text",
    "sign_request",
    "signature_valid",
]

# Header names (as sent; WSGI spells them HTTP_FMA_TIMESTAMP, ...).
TIMESTAMP_HEADER = "FMA-Timestamp"
NONCE_HEADER = "FMA-Nonce"
SIGNATURE_HEADER = "FMA-Signature"
HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

# How far a request's timestamp may be from the service's clock, either way.
MAX_SKEW_SECONDS = 300
# How long a used nonce is remembered: as long as a request carrying it could still be on time (both ways).
NONCE_LIFETIME_SECONDS = 2 * MAX_SKEW_SECONDS

NONCE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{16,128}")
# First line of every signed message: the scheme and its version.
SIGNATURE_VERSION = "FMA-SIG-V1"


class InvalidPublicKeyError(CallerError):
    """A public key that is not 32 bytes of Ed25519 key in base64."""


def canonical_target(path: str, query: str = "") -> str:
    """The path and query as signed: the path and each query part percent-encoded the same way, pairs sorted.

    The path is decoded then encoded again (all but ``A-Z a-z 0-9 _ . - ~ /``), so a path signed as sent
    (``/a%2Cb/``) and the same path as the service reads it (``/a,b/``) sign alike.

    Parameters
    ----------
    path : str
        The path relative to the service root, starting with ``/``, percent-encoded or not.
    query : str
        The query string without ``?`` (empty when none).

    Returns
    -------
    str
        ``path`` alone, or ``path?query`` in canonical form.
    """
    path = quote(unquote(path), safe="/")
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    if not pairs:
        return path
    return f"{path}?{urlencode(pairs, quote_via=quote)}"


def canonical_message(*, method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes a client signs (see the module's docstring).

    Parameters
    ----------
    method : str
        The HTTP method; upper-cased here.
    target : str
        :func:`canonical_target` of the request.
    timestamp, nonce : str
        The values of the ``FMA-Timestamp`` and ``FMA-Nonce`` headers.
    body : bytes
        The request body as sent (empty for none).

    Returns
    -------
    bytes
    """
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([SIGNATURE_VERSION, method.upper(), target, timestamp, nonce, digest]).encode()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The public half of ``private_key`` as the service takes it: 32 raw bytes, base64."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given in base64.

    Raises
    ------
    InvalidPublicKeyError
        ``text`` is not base64 of 32 bytes that form an Ed25519 public key.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPublicKeyError("public_key must be base64 of the 32-byte raw Ed25519 public key") from None
    if len(raw) != 32:
        raise InvalidPublicKeyError(f"public_key must be 32 bytes (raw Ed25519), not {len(raw)}")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidPublicKeyError("public_key is not an Ed25519 public key") from None
    return raw


def sign_request(
    private_key: Ed25519PrivateKey,
    *,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The signature headers of one request (add ``CLIENT-UUID`` beside them).

    Parameters
    ----------
    private_key : Ed25519PrivateKey
        The client's key (``Ed25519PrivateKey.generate()``; keep it on the client).
    method, path, query, body
        The request as it will be sent; ``path`` relative to the service root.
    timestamp, nonce
        Now and a fresh random nonce unless given (tests give them to build stale or replayed requests).

    Returns
    -------
    dict of str to str
        ``FMA-Timestamp``, ``FMA-Nonce`` and ``FMA-Signature``.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_urlsafe(24) if nonce is None else nonce
    message = canonical_message(
        method=method, target=canonical_target(path, query), timestamp=stamp, nonce=nonce, body=body
    )
    signature = base64.b64encode(private_key.sign(message)).decode()
    return {TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: signature}


def signature_valid(public_key: bytes, signature: str, message: bytes) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
