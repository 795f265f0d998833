"""``CLIENT-UUID`` authentication of federated clients.

Developers and staff authenticate with DRF's Basic (with failed passwords counted, see
:class:`GuardedBasicAuthentication`), Token and Session classes (see ``REST_FRAMEWORK`` in the settings);
a federated client sends ``CLIENT-UUID: <uuid>``, and on ``signed`` models signs each request with its
Ed25519 key as well (``fma_core.signatures``): the signature is checked here, for every request that carries
one, and ``client.request_signed`` tells the selectors and permissions whether it did.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from rest_framework.authentication import BaseAuthentication, BasicAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from fma_core import signatures
from fma_django_connectors import selectors
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


_SIGNATURE_META = tuple("HTTP_" + name.upper().replace("-", "_") for name in signatures.HEADERS)

# The 401 ``detail`` of each refused signature (the OpenAPI description quotes them).
INCOMPLETE_SIGNATURE = f"A signed request needs all of {', '.join(signatures.HEADERS)}."
STALE_TIMESTAMP = (
    f"{signatures.TIMESTAMP_HEADER} must be the time of the request in seconds since the epoch, within "
    f"{signatures.MAX_SKEW_SECONDS} seconds of the server's clock."
)
MALFORMED_NONCE = f"{signatures.NONCE_HEADER} must be 16 to 128 characters among A-Z a-z 0-9 _ -."
INVALID_SIGNATURE = "Invalid signature."
REPLAYED_NONCE = f"Replayed request: this {signatures.NONCE_HEADER} was already used."


def _signature_checked(request: Request, client: Client) -> bool:
    """True for a request signed by ``client``'s key, False for one without signature headers.

    Raises ``AuthenticationFailed`` (401) for an incomplete, stale, wrong or replayed signature.
    """
    timestamp, nonce, signature = (request.META.get(name) for name in _SIGNATURE_META)
    if timestamp is None and nonce is None and signature is None:
        return False
    if timestamp is None or nonce is None or signature is None:
        raise AuthenticationFailed(INCOMPLETE_SIGNATURE)
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > signatures.MAX_SKEW_SECONDS:
        raise AuthenticationFailed(STALE_TIMESTAMP)
    if not signatures.NONCE_PATTERN.fullmatch(nonce):
        raise AuthenticationFailed(MALFORMED_NONCE)
    message = signatures.canonical_message(
        method=request.method or "",
        target=signatures.canonical_target(request._request.path_info, request.META.get("QUERY_STRING", "")),
        timestamp=timestamp,
        nonce=nonce,
        body=request._request.body,
    )
    if client.public_key is None or not signatures.signature_valid(bytes(client.public_key), signature, message):
        raise AuthenticationFailed(INVALID_SIGNATURE)
    # Remembered for as long as its timestamp is acceptable (both ways), in the cache all containers share;
    # ``add`` is a conditional insert, so two containers receiving the same request cannot both accept it.
    if not cache.add(f"nonce:{client.pk}:{nonce}", 1, timeout=signatures.NONCE_LIFETIME_SECONDS):
        raise AuthenticationFailed(REPLAYED_NONCE)
    return True


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
