"""``CLIENT-UUID`` authentication of federated clients.

Developers and staff authenticate with DRF's Basic (with failed passwords counted, see
:class:`GuardedBasicAuthentication`), Token and Session classes (see ``REST_FRAMEWORK`` in the settings);
a federated client sends ``CLIENT-UUID: <uuid>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.authentication import BaseAuthentication, BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from fma_django_connectors import selectors
from fma_django_connectors.models import Client
from fma_django_connectors.throttling import LoginGuard


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
    A malformed value or an unknown uuid fails the request (401).
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
            raise AuthenticationFailed(f'"{raw}" is not a valid UUID.') from None
        client = selectors.client_get(uuid=value)
        if client is None:
            raise AuthenticationFailed("Invalid UUID")
        return ClientPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return "CLIENT-UUID"


class GuardedBasicAuthentication(BasicAuthentication):
    """HTTP Basic whose wrong passwords count as guesses (``login`` rate, per IP and per username).

    DRF checks a Basic password before any throttle runs, so the count happens here: once the rate is
    used up, every Basic attempt from that IP or for that username is a 429 until the window moves on,
    a right password included (otherwise the answer itself would tell a guesser when it found one).
    """

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[Any, None]:
        guard = LoginGuard()
        keys = guard.keys(request, userid)
        guard.refuse_if_exhausted(keys)
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            guard.record(keys)
            raise
