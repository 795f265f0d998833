"""Signed client requests: RFC 9421 HTTP Message Signatures with Ed25519, as the service checks them.

Framework-free: the service hands in the request (method, target URI, headers, body) and the key it expects;
the signature base, its parsing and the cryptography are the ``http-message-signatures`` library's (RFC 9421),
the body digest is RFC 9530's ``Content-Digest``. ``docs/security.md`` is the full description (with a
``curl`` + ``openssl`` client); the OpenAPI description says the same.

What a signature must cover (its ``Signature-Input`` lists them, in any order):

- ``@method``, ``@target-uri`` (:func:`target_uri`: scheme, host, the path below the service root and the
  query exactly as sent, so a reordered or repeated query parameter breaks the signature);
- ``client-uuid``: the ``CLIENT-UUID`` header, so a signature cannot be carried over to another client;
- ``content-digest`` whenever the request has a body (``sha-256``, checked against the body);

with the parameters ``created`` (within ``MAX_SKEW_SECONDS`` of the service's clock), ``nonce`` (fresh,
never reused with the same key) and ``keyid`` (who signs: the client's uuid; on the registration of a new
client, which has no uuid yet, the ``public_key`` it registers). ``alg``, when given, is ``ed25519``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fma_core.exceptions import CallerError

__all__ = [
    "ALGORITHM",
    "CLIENT_COMPONENTS",
    "MAX_SKEW_SECONDS",
    "REGISTRATION_COMPONENTS",
    "InvalidPublicKeyError",
    "SignatureError",
    "VerifiedSignature",
    "parse_public_key",
    "public_key_text",
    "signature_key_id",
    "signature_verify",
    "target_uri",
]

# The RFC 9421 algorithm (section 3.3.6), the only one taken.
ALGORITHM = "ed25519"
# How far a signature's ``created`` may be from the service's clock, either way.
MAX_SKEW_SECONDS = 300
# What a client's signature must cover; ``content-digest`` too when the request has a body.
CLIENT_COMPONENTS = ("@method", "@target-uri", "client-uuid")
# What the signature of a new client's registration must cover (its body holds the key: ``content-digest``).
REGISTRATION_COMPONENTS = ("@method", "@target-uri", "content-digest")
# A nonce: 16 to 128 visible ASCII characters (a Structured Field String without escapes), e.g. base64.
NONCE_PATTERN = re.compile(r"[!#-\[\]-~]{16,128}")
# Characters a path keeps unencoded in the signed target URI: RFC 3986 ``pchar`` and ``/`` (section 3.3).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

SIGNATURE_HEADER = "Signature"
SIGNATURE_INPUT_HEADER = "Signature-Input"
DIGEST_HEADER = "Content-Digest"

# The 401 ``detail`` of each refusal (the OpenAPI description and docs/security.md quote them).
INCOMPLETE = f"A signed request needs both {SIGNATURE_INPUT_HEADER} and {SIGNATURE_HEADER} (RFC 9421)."
MALFORMED = (
    f"{SIGNATURE_INPUT_HEADER} and {SIGNATURE_HEADER} must each be a Structured Field Dictionary (RFC 8941) "
    "holding one signature under the same label: an Inner List of covered components with created, nonce and "
    "keyid, and a Byte Sequence."
)
STALE = (
    f"The signature's created must be the time of the request, within {MAX_SKEW_SECONDS} seconds of the server's clock."
)
MALFORMED_NONCE = "The signature's nonce must be 16 to 128 visible ASCII characters, without quotes or backslashes."
WRONG_ALGORITHM = f'The signature\'s alg, when given, must be "{ALGORITHM}".'
DIGEST_INVALID = (
    f"{DIGEST_HEADER} must be sha-256=:<base64 of the body's SHA-256>: (RFC 9530) and match the body as sent."
)
INVALID = "Invalid signature."


def uncovered(components: Sequence[str]) -> str:
    """The 401 ``detail`` of a signature that leaves out some of ``components``."""
    return f"The signature must cover {', '.join(components)}."


def wrong_key_id(expected: str) -> str:
    """The 401 ``detail`` of a signature whose ``keyid`` is not the one expected (``expected`` says which)."""
    return f"The signature's keyid must be {expected}."


class SignatureError(CallerError):
    """A signed request refused (its message is the 401 ``detail``)."""


class InvalidPublicKeyError(CallerError):
    """A public key that is not 32 bytes of Ed25519 key in base64."""


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: who signed (``key_id``), its ``nonce`` and ``created`` (seconds since the epoch)."""

    key_id: str
    nonce: str
    created: int

    @property
    def expires(self) -> int:
        """Until when (seconds since the epoch) a request carrying this signature could still be on time."""
        return self.created + MAX_SKEW_SECONDS


def target_uri(*, scheme: str, authority: str, path: str, query: str) -> str:
    """The ``@target-uri`` the service checks a signature against.

    ``path`` is the path below the service's root as the service reads it (decoded; an API Gateway stage
    prefix is not part of it): it is percent-encoded again where RFC 3986 requires (UTF-8, all but
    ``pchar`` and ``/``). ``query`` is the query string as the client sent it, without ``?``.
    """
    uri = f"{scheme}://{authority}{quote(path, safe=_PATH_SAFE)}"
    return f"{uri}?{query}" if query else uri


def public_key_text(public_key: bytes) -> str:
    """A raw public key as clients give it: base64 (standard alphabet) of its 32 bytes."""
    return base64.b64encode(public_key).decode()


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


@dataclass(frozen=True)
class _Request:
    """The request as ``http-message-signatures`` reads it (method, absolute URL, header field lines)."""

    method: str
    url: str
    headers: _Fields


class _Fields:
    """Read-only header field lines; ``items()`` is all the verifier reads."""

    def __init__(self, fields: Iterable[tuple[str, str]]) -> None:
        self._fields = list(fields)

    def items(self) -> list[tuple[str, str]]:
        return self._fields

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(name for name, _ in self._fields))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(field.lower() == name.lower() for field, _ in self._fields)

    def get(self, name: str) -> str | None:
        values = [value for field, value in self._fields if field.lower() == name.lower()]
        return ", ".join(values) if values else None


def _dictionary(text: str) -> dict[str, Any]:
    try:
        parsed = http_sf.parse(text.encode("ascii"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeError):  # http_sf's parse errors are ValueErrors
        raise SignatureError(MALFORMED) from None
    if not isinstance(parsed, dict):
        raise SignatureError(MALFORMED)
    return parsed


def _signature_input(fields: _Fields) -> tuple[list[str], dict[str, Any]] | None:
    """The covered components and parameters of the request's one signature; None when it carries none."""
    inputs, signatures = fields.get(SIGNATURE_INPUT_HEADER), fields.get(SIGNATURE_HEADER)
    if inputs is None and signatures is None:
        return None
    if inputs is None or signatures is None:
        raise SignatureError(INCOMPLETE)
    members, values = _dictionary(inputs), _dictionary(signatures)
    if len(members) != 1 or members.keys() != values.keys():
        raise SignatureError(MALFORMED)
    (covered, parameters), (value, _) = next(iter(members.values())), next(iter(values.values()))
    if not isinstance(covered, list) or not isinstance(value, bytes):
        raise SignatureError(MALFORMED)
    # Each covered component is an Item: (value, parameters); a component with parameters is not ours.
    names = [item[0] if isinstance(item[0], str) and not item[1] else "" for item in covered]
    created, nonce, key_id = (parameters.get(name) for name in ("created", "nonce", "keyid"))
    if type(created) is not int or not isinstance(nonce, str) or not isinstance(key_id, str):
        raise SignatureError(MALFORMED)
    return names, parameters


def signature_key_id(headers: Iterable[tuple[str, str]]) -> str | None:
    """The ``keyid`` of the request's signature; None when it carries none.

    Raises
    ------
    SignatureError
        The signature headers are incomplete or malformed.
    """
    found = _signature_input(_Fields(headers))
    return None if found is None else found[1]["keyid"]


def signature_verify(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    key_id: str,
    key_id_rule: str,
    public_key: bytes | None,
    components: Sequence[str],
    now: float,
) -> VerifiedSignature | None:
    """Check the request's signature; None when it carries none (no ``Signature``, no ``Signature-Input``).

    Parameters
    ----------
    method, url, headers, body
        The request: its method, :func:`target_uri`, header field lines (name, value) and body bytes as received.
    key_id
        The ``keyid`` the signature must name; ``key_id_rule`` says so in words, for the refusal.
    public_key
        The 32 raw bytes of the key that must have signed; None when the signer has no key (always refused).
    components
        What the signature must cover (``CLIENT_COMPONENTS`` or ``REGISTRATION_COMPONENTS``);
        ``content-digest`` is required on top whenever ``body`` is not empty.
    now
        The service's clock, seconds since the epoch.

    Raises
    ------
    SignatureError
        The signature is incomplete, malformed, stale, covers too little, names another key, does not verify,
        or the body does not match its digest. Replays are the caller's to refuse (with ``nonce``).
    """
    fields = _Fields(headers)
    found = _signature_input(fields)
    if found is None:
        return None
    names, parameters = found
    expires = parameters.get("expires")
    if abs(now - parameters["created"]) > MAX_SKEW_SECONDS:
        raise SignatureError(STALE)
    if expires is not None and (type(expires) is not int or expires < now):
        raise SignatureError(STALE)
    if not NONCE_PATTERN.fullmatch(parameters["nonce"]):
        raise SignatureError(MALFORMED_NONCE)
    if parameters.get("alg", ALGORITHM) != ALGORITHM:
        raise SignatureError(WRONG_ALGORITHM)
    required = [*components, *(["content-digest"] if body and "content-digest" not in components else [])]
    if not set(required) <= set(names):
        raise SignatureError(uncovered(required))
    if parameters["keyid"] != key_id:
        raise SignatureError(wrong_key_id(key_id_rule))
    # Imported at the first signed request, not at start-up: the library loads all of cryptography's algorithms
    # (about a third of a second of every Lambda cold start otherwise).
    from http_message_signatures import ContentDigest, HTTPMessageSignaturesException

    digest = fields.get(DIGEST_HEADER)
    if digest is not None or "content-digest" in required:
        try:
            ContentDigest.verify(digest or "", body)
        except HTTPMessageSignaturesException:
            raise SignatureError(DIGEST_INVALID) from None
    if public_key is None:
        raise SignatureError(INVALID)
    _verify(_Request(method, url, fields), body=body, key_id=key_id, public_key=public_key)
    return VerifiedSignature(key_id=key_id, nonce=parameters["nonce"], created=parameters["created"])


def _verify(request: _Request, *, body: bytes, key_id: str, public_key: bytes) -> None:
    from http_message_signatures import (
        HTTPMessageSignaturesException,
        HTTPMessageVerifier,
        MappingKeyResolver,
        algorithms,
    )

    class Verifier(HTTPMessageVerifier):
        """The library's verifier, its time checks left to :func:`signature_verify` (against the caller's clock)."""

        def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
            # ``created`` and ``expires`` were checked before, against the clock the caller passed.
            return None

    resolver = MappingKeyResolver(public_keys={key_id: Ed25519PublicKey.from_public_bytes(public_key)}, private_keys={})
    verifier = Verifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    try:
        verifier.verify(request, max_age=None, body=body)
    except (HTTPMessageSignaturesException, ValueError, TypeError):
        raise SignatureError(INVALID) from None
