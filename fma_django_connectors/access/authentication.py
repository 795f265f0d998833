"""``CLIENT-UUID`` authentication of federated clients.

Developers and staff authenticate with DRF's Basic (with failed passwords counted, see
:class:`GuardedBasicAuthentication`), Token and Session classes (see ``REST_FRAMEWORK`` in the settings);
a federated client sends ``CLIENT-UUID: <uuid>``, and on ``signed`` models signs each request with its
Ed25519 key as well (RFC 9421, ``fma_core.signatures``): the signature is checked here, for every request that
carries one, its nonce used up (``nonces``), and ``client.request_signed`` tells the selectors and permissions
whether it did. A new client's registration is signed by the key it registers (:func:`registration_key`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.authentication import BaseAuthentication, BasicAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from fma_core import signatures
from fma_django_connectors import selectors
from fma_django_connectors.access import nonces
from fma_django_connectors.access.throttling import FailedCredentialGuard, LoginGuard
from fma_django_connectors.models import Client

# The 401 ``detail`` of a well-formed ``CLIENT-UUID`` that no client has (the contract's words).
UNKNOWN_UUID = "Invalid UUID"


@dataclass(frozen=True)
class ClientPrincipal:
    """``request.user`` of a request authenticated by ``CLIENT-UUID``: never staff, never a developer."""

    client: Client
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __str__(self) -> str:
        return f"client {self.client.uuid}"


Actor = AbstractBaseUser | Client


def request_actor(request: Request) -> Actor | None:
    """Who is calling: the ``Client`` for a client, the Django user for a developer, None when anonymous."""
    user: Any = request.user
    if isinstance(user, ClientPrincipal):
        return user.client
    if user is None or isinstance(user, AnonymousUser):
        return None
    return user


class ClientUUIDAuthentication(BaseAuthentication):
    """Authenticates a federated client by its ``CLIENT-UUID`` header.

    No header: returns None so that the next authentication class may try.
    A malformed value or an unknown uuid fails the request (401), and counts as a failed credential of the
    caller's IP (a 429 once the ``credentials`` rate is used up, ``FailedCredentialGuard``).
    """

    # WSGI name of the ``CLIENT-UUID`` header.
    header = "HTTP_CLIENT_UUID"

    def authenticate(self, request: Request) -> tuple[ClientPrincipal, Client] | None:
        raw = request.META.get(self.header)
        if raw is None:
            return None
        try:
            value = uuid.UUID(raw)
        except ValueError:
            FailedCredentialGuard().count_failure(request)
            raise AuthenticationFailed(f'"{raw}" is not a valid UUID.') from None
        client = selectors.client_get(uuid=value)
        if client is None:
            FailedCredentialGuard().count_failure(request)
            raise AuthenticationFailed(UNKNOWN_UUID)
        client.request_signed = _signature_checked(request, client)  # type: ignore[attr-defined]
        return ClientPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return "CLIENT-UUID"


# The 401 ``detail`` of the refusals the service adds to those of ``fma_core.signatures``.
REPLAYED_NONCE = "Replayed request: this nonce was already used with this key."
KEY_UNPROVEN = (
    "A new client proves that it holds the key it registers: sign the registration with it (RFC 9421, keyid = "
    "the public_key)."
)
CLIENT_KEY_ID = "the client's uuid (its CLIENT-UUID)"
REGISTRATION_KEY_ID = "the public_key being registered (base64 of its 32 raw bytes)"


def request_target_uri(request: Request) -> str:
    """The ``@target-uri`` a signature of ``request`` covers: the path below the service's root (no stage)."""
    return signatures.target_uri(
        scheme=request.scheme or "http",
        authority=_authority(request),
        path=request._request.path_info,
        query=request.META.get("QUERY_STRING", ""),
    )


def _authority(request: Request) -> str:
    # The Host header as received (Django has checked it against ALLOWED_HOSTS), without a default port.
    host = request._request.get_host()
    default = {"http": ":80", "https": ":443"}.get(request.scheme or "")
    return host[: -len(default)] if default and host.endswith(default) else host


def _signature_verify(
    request: Request, *, key_id: str, key_id_rule: str, public_key: bytes | None, components: tuple[str, ...]
) -> signatures.VerifiedSignature | None:
    """Check the request's signature and use up its nonce; None when the request carries no signature.

    Raises ``AuthenticationFailed`` (401) for an incomplete, malformed, stale, wrong or replayed signature.
    """
    now = time.time()
    try:
        signature = signatures.signature_verify(
            method=request.method or "",
            url=request_target_uri(request),
            headers=request._request.headers.items(),
            body=request._request.body,
            key_id=key_id,
            key_id_rule=key_id_rule,
            public_key=public_key,
            components=components,
            now=now,
        )
    except signatures.SignatureError as error:
        # A bad signature is a failed credential like an unknown uuid: braked per IP.
        FailedCredentialGuard().count_failure(request)
        raise AuthenticationFailed(str(error)) from None
    if signature is None:
        return None
    assert public_key is not None  # a signature verifies only against a key
    if not nonces.nonce_use(public_key=public_key, signature=signature, now=now):
        raise AuthenticationFailed(REPLAYED_NONCE)
    return signature


def _signature_checked(request: Request, client: Client) -> bool:
    """True for a request signed by ``client``'s key, False for one without a signature (401 for a bad one)."""
    public_key = None if client.public_key is None else bytes(client.public_key)
    signature = _signature_verify(
        request,
        key_id=str(client.uuid),
        key_id_rule=CLIENT_KEY_ID,
        public_key=public_key,
        components=signatures.CLIENT_COMPONENTS,
    )
    return signature is not None


def registration_key(request: Request) -> bytes | None:
    """The public key that signed a new client's registration (``keyid``); None when it is not signed.

    Read before the body is parsed: the signature covers the body's digest. Raises ``AuthenticationFailed`` (401)
    for a bad signature, as for any signed request.
    """
    try:
        found = signatures.signature_key_id(request._request.headers.items())
    except signatures.SignatureError as error:
        raise AuthenticationFailed(str(error)) from None
    if found is None:
        return None
    try:
        public_key = signatures.parse_public_key(found)
    except signatures.InvalidPublicKeyError:
        raise AuthenticationFailed(signatures.wrong_key_id(REGISTRATION_KEY_ID)) from None
    _signature_verify(
        request,
        key_id=found,
        key_id_rule=REGISTRATION_KEY_ID,
        public_key=public_key,
        components=signatures.REGISTRATION_COMPONENTS,
    )
    return public_key


def request_signed(request: Request) -> bool:
    """Whether the calling client signed this request."""
    return isinstance(request.auth, Client) and getattr(request.auth, "request_signed", False)


class GuardedBasicAuthentication(BasicAuthentication):
    """HTTP Basic whose wrong passwords count as guesses (``login`` rate, per IP and per username).

    DRF checks a Basic password before any throttle runs, so the count happens here, before the check (a right
    password takes its count back): once the rate is used up, every Basic attempt from that IP or for that
    username is a 429 until the window moves on, a right password included (otherwise the answer itself would
    tell a guesser when it found one). A malformed Basic header tries no password: it counts as a failed
    credential instead (``credentials`` rate, ``FailedCredentialGuard``).
    """

    def authenticate(self, request: Request) -> Any:
        self.password_tried = False
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            if not self.password_tried:  # a malformed header: a failed credential, though not a password guess
                FailedCredentialGuard().count_failure(request)
            raise

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[Any, None]:
        self.password_tried = True
        guard = LoginGuard()
        keys = guard.keys(request, userid)
        guard.count_guess(keys)
        answer = super().authenticate_credentials(userid, password, request)
        guard.forgive(keys)
        return answer


class GuardedTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token <key>`` whose refusals count as failed credentials (``credentials`` rate)."""

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            FailedCredentialGuard().count_failure(request)
            raise
