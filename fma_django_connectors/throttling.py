"""Brakes on abuse: request rates per client, per developer, per IP for anonymous calls, and for logins.

Every throttle counts in Django's ``default`` cache, which the settings point at the metadata database
(``DatabaseCache``): each Lambda container is a separate process, so a per-process cache would give every
container its own allowance; the database is the one store all of them already share (no cache cluster,
no VPC endpoint to add). Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, read at each request so a
changed setting takes effect; an exhausted rate is a ``429`` JSON with ``Retry-After``.

Login guesses are counted in one place for both doors a password opens: every ``POST /api-token-auth/``
and every failed HTTP Basic password count against the caller's IP and against the username tried (DRF
refuses a wrong Basic password before its throttles run, so :class:`LoginGuard` counts those itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from fma_django_connectors.models import Client


def client_ip(request: Any) -> str:
    """The caller's address as the edge in front of the service saw it, which a caller cannot choose.

    API Gateway puts it in the request context (REST: ``identity.sourceIp``, HTTP API: ``http.sourceIp``);
    apig-wsgi's ``REMOTE_ADDR`` would take the first ``X-Forwarded-For`` value of a REST event, which the
    caller writes. Behind an ALB, the last ``X-Forwarded-For`` value is the one the ALB appended. Locally
    (the development server, tests), ``REMOTE_ADDR``.
    """
    meta = request.META
    context = meta.get("apig_wsgi.request_context")
    if isinstance(context, dict):
        for holder in (context.get("identity"), context.get("http")):
            if isinstance(holder, dict) and holder.get("sourceIp"):
                return str(holder["sourceIp"])
        if "elb" in context and meta.get("HTTP_X_FORWARDED_FOR"):
            return meta["HTTP_X_FORWARDED_FOR"].split(",")[-1].strip()
    return str(meta.get("REMOTE_ADDR") or "unknown")


class _Throttle(SimpleRateThrottle):
    """DRF's sliding-window throttle with the rate looked up at each request and keys of this module's shape."""

    def __init__(self) -> None:
        # SimpleRateThrottle reads the rate in __init__ from a dict captured at import; read the live one.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def key(self, ident: Any) -> str:
        return f"throttle:{self.scope}:{ident}"


class ClientRateThrottle(_Throttle):
    """Requests of one federated client (``CLIENT-UUID``), whatever address it calls from."""

    scope = "client"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.key(request.auth.pk) if isinstance(request.auth, Client) else None


class DeveloperRateThrottle(_Throttle):
    """Requests of one developer (any Django user, staff included)."""

    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, Client) or not request.user or not request.user.is_authenticated:
            return None
        return self.key(request.user.pk)


class AnonymousRateThrottle(_Throttle):
    """Requests without credentials, per IP."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.key(client_ip(request))


class RegistrationRateThrottle(_Throttle):
    """Anonymous ``register_client`` calls per IP: each one creates a client, so the stricter rate."""

    scope = "registration"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if getattr(view, "action", None) != "register_client" or (request.user and request.user.is_authenticated):
            return None
        return self.key(client_ip(request))


class LoginGuard(_Throttle):
    """Password guesses, per IP and per username tried, shared by the token route and HTTP Basic."""

    scope = "login"

    def keys(self, request: Any, username: str | None) -> list[str]:
        keys = [self.key(f"ip:{client_ip(request)}")]
        if username:
            keys.append(self.key(f"user:{username.lower()}"))
        return keys

    def refuse_if_exhausted(self, keys: list[str]) -> None:
        """Raise ``Throttled`` when any of ``keys`` used up the rate within the window."""
        if self.rate is None:
            return
        self.now = self.timer()
        waits = []
        for key in keys:
            self.history = [moment for moment in self.cache.get(key, []) if moment > self.now - self.duration]
            if len(self.history) >= self.num_requests:
                waits.append(self.wait())
        if waits:
            raise Throttled(wait=max(waits))

    def record(self, keys: list[str]) -> None:
        """Count one guess against each of ``keys``."""
        if self.rate is None:
            return
        self.now = self.timer()
        for key in keys:
            history = [moment for moment in self.cache.get(key, []) if moment > self.now - self.duration]
            self.cache.set(key, [self.now, *history], self.duration)


class TokenRouteThrottle(LoginGuard):
    """``POST /api-token-auth/``: every attempt is a guess (a right password as well: it could be the 10th try)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        keys = self.keys(request, username if isinstance(username, str) else None)
        self.refuse_if_exhausted(keys)
        self.record(keys)
        return True
