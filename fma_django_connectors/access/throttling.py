"""Brakes on abuse: request rates per client, per developer, per IP for anonymous calls, and for logins.

Counts live in the metadata database (:class:`~fma_django_connectors.models.ThrottleCount`), the one store all
Lambda containers already share (no cache cluster, no VPC endpoint to add): one row per key and fixed window,
taken with one atomic statement per check, so requests racing in from many containers can never take more than
the rate between them. The rate applies to a sliding window, estimated from the current fixed window and the
previous one weighted by the share of it still inside the sliding window (``previous * (1 - elapsed) +
current``): a caller cannot double its allowance by straddling a window boundary. Rates are
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, read at each request so a changed setting takes effect; an
exhausted rate is a ``429`` JSON with ``Retry-After``.

Login guesses are counted in one place for every door a password opens: every ``POST /api-token-auth/``,
every failed HTTP Basic password and every failed password of the login forms (dashboard, admin) count against
the caller's IP and against the username tried (DRF refuses a wrong Basic password before its throttles run,
and the forms are Django views, so :class:`LoginGuard` counts those itself).

Credentials other than passwords that fail (a ``CLIENT-UUID`` naming no client, a wrong token, a malformed
Basic header) count against the caller's IP in their own scope (:class:`FailedCredentialGuard`), failures
only: a right uuid or token costs no statement more, and is never refused by it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from fma_django_connectors.models import Client, ThrottleCount

# Rate periods as DRF spells them: only the first letter counts ("10/min", "1000/day").
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Expired rows are deleted by the first new row a process writes after this many seconds.
CLEANUP_INTERVAL_SECONDS = 60
# Keys hold what a caller chose (the username tried): longer identities are stored as their digest.
_MAX_IDENT_LENGTH = 100


@dataclass(frozen=True)
class Rate:
    """``requests`` per ``seconds``, as parsed from a rate setting such as ``"10/min"``."""

    requests: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        requests, period = text.split("/")
        return cls(requests=int(requests), seconds=_PERIOD_SECONDS[period[0]])


@dataclass(frozen=True)
class _Window:
    """The fixed window holding ``now``, and how far into it ``now`` is (0 to 1)."""

    start: int
    elapsed: float

    @classmethod
    def at(cls, now: float, rate: Rate) -> _Window:
        start = int(now // rate.seconds) * rate.seconds
        return cls(start=start, elapsed=(now - start) / rate.seconds)


_TABLE = ThrottleCount._meta.db_table
_last_cleanup = 0.0
_cleanup_lock = threading.Lock()


def _take_sql() -> str:
    """Counts one request in the key's current window if the sliding estimate leaves room for it, else nothing.

    The first request of a window inserts its row, any other one adds to it; both under the same condition, so
    one statement decides and counts, atomically (PostgreSQL, and SQLite 3.35 or later for ``RETURNING``).
    A refused request returns no row and counts nowhere.
    """
    q = connection.ops.quote_name
    table, key, start, count, expires = q(_TABLE), q("key"), q("window_start"), q("count"), q("expires_at")
    previous = f"COALESCE((SELECT p.{count} FROM {table} p WHERE p.{key} = %s AND p.{start} = %s), 0)"
    # A SELECT with a WHERE ahead of ON CONFLICT: SQLite's documented way to tell its upsert from a join.
    return (
        f"INSERT INTO {table} ({key}, {start}, {count}, {expires}) SELECT %s, %s, 1, %s "
        f"WHERE {previous} * %s + 1 <= %s "
        f"ON CONFLICT ({key}, {start}) DO UPDATE SET {count} = {table}.{count} + 1 "
        f"WHERE {previous} * %s + {table}.{count} + 1 <= %s "
        f"RETURNING {count}"
    )


def take(keys: Sequence[str], rate: Rate, *, now: float | None = None) -> float | None:
    """Count one request against every one of ``keys``; ``None`` if each had room, else the seconds to wait.

    A request refused by one key is taken back from those that had counted it, so a refusal costs no one any
    of the allowance.
    """
    now = time.time() if now is None else now
    window = _Window.at(now, rate)
    previous_start = window.start - rate.seconds
    previous_weight = 1.0 - window.elapsed
    sql = _take_sql()
    taken: list[str] = []
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute(
                sql,
                [
                    *(key, window.start, window.start + 2 * rate.seconds),
                    *(key, previous_start, previous_weight, rate.requests),
                    *(key, previous_start, previous_weight, rate.requests),
                ],
            )
            row = cursor.fetchone()
            if row is None:
                give_back(taken, window.start)
                return _wait(key, rate, window)
            taken.append(key)
            if row[0] == 1:
                _delete_expired(now)
    return None


def give_back(keys: Sequence[str], window_start: int) -> None:
    """Uncount one request of each of ``keys`` in the window starting at ``window_start``."""
    if not keys:
        return
    q = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(_TABLE)} SET {q('count')} = {q('count')} - 1 "
            f"WHERE {q('window_start')} = %s AND {q('key')} IN ({placeholders}) AND {q('count')} > 0",
            [window_start, *keys],
        )


def _wait(key: str, rate: Rate, window: _Window) -> float:
    """Seconds until the sliding estimate of ``key`` leaves room for one more request, if no other comes."""
    if rate.requests < 1:
        return float(rate.seconds)  # a rate of 0 never leaves room: a window, as DRF answers
    previous_start = window.start - rate.seconds
    counts = dict(
        ThrottleCount.objects.filter(key=key, window_start__in=[previous_start, window.start]).values_list(
            "window_start", "count"
        )
    )
    previous, current = counts.get(previous_start, 0), counts.get(window.start, 0)
    room = rate.requests - 1 - current
    if room >= 0:
        # Later in this window, once the previous one weighs little enough: previous * (1 - elapsed) <= room.
        elapsed_needed = 1.0 - room / previous if previous else window.elapsed
    else:
        # In the next window, where this one is the previous: current * (1 - elapsed) + 1 <= requests.
        elapsed_needed = 2.0 - (rate.requests - 1) / current
    # At least a second: the rows were read after the refusal, and other requests may have come meanwhile.
    return max(1.0, (elapsed_needed - window.elapsed) * rate.seconds)


def _delete_expired(now: float) -> None:
    """Delete the rows no window weighs any more, at most once per ``CLEANUP_INTERVAL_SECONDS`` per process."""
    global _last_cleanup
    with _cleanup_lock:
        if now - _last_cleanup < CLEANUP_INTERVAL_SECONDS:
            return
        _last_cleanup = now
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {q(_TABLE)} WHERE {q('expires_at')} <= %s", [int(now)])


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


class _Throttle(BaseThrottle):
    """A rate of this module's scope, looked up at each request, counted per key in the shared table."""

    scope: str

    def __init__(self) -> None:
        text = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.rate = None if text is None else Rate.parse(text)
        self.seconds_to_wait: float | None = None

    def key(self, ident: Any) -> str:
        ident = str(ident)
        if len(ident) > _MAX_IDENT_LENGTH:
            ident = "sha256:" + hashlib.sha256(ident.encode()).hexdigest()
        return f"throttle:{self.scope}:{ident}"

    def get_key(self, request: Request, view: Any) -> str | None:  # pragma: no cover
        """The key ``request`` counts against, or ``None`` when this throttle does not apply to it."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        key = self.get_key(request, view)
        if self.rate is None or key is None:
            return True
        self.seconds_to_wait = take([key], self.rate)
        return self.seconds_to_wait is None

    def wait(self) -> float | None:
        return self.seconds_to_wait


class ClientRateThrottle(_Throttle):
    """Requests of one federated client (``CLIENT-UUID``), whatever address it calls from."""

    scope = "client"

    def get_key(self, request: Request, view: Any) -> str | None:
        return self.key(request.auth.pk) if isinstance(request.auth, Client) else None


class DeveloperRateThrottle(_Throttle):
    """Requests of one developer (any Django user, staff included)."""

    scope = "user"

    def get_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, Client) or not request.user or not request.user.is_authenticated:
            return None
        return self.key(request.user.pk)


class AnonymousRateThrottle(_Throttle):
    """Requests without credentials, per IP."""

    scope = "anon"

    def get_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.key(client_ip(request))


class RegistrationRateThrottle(_Throttle):
    """Anonymous ``register_client`` calls per IP: each one creates a client, so the stricter rate."""

    scope = "registration"

    def get_key(self, request: Request, view: Any) -> str | None:
        if getattr(view, "action", None) != "register_client" or (request.user and request.user.is_authenticated):
            return None
        return self.key(client_ip(request))


class LoginGuard(_Throttle):
    """Password guesses, per IP and per username tried, shared by the token route and HTTP Basic.

    A guess is counted before the password is checked, so that guesses sent together cannot all pass a check
    that none of them has counted yet; :meth:`forgive` takes back the count of a right password.
    """

    scope = "login"

    def keys(self, request: Any, username: str | None) -> list[str]:
        keys = [self.key(f"ip:{client_ip(request)}")]
        if username:
            keys.append(self.key(f"user:{username.lower()}"))
        return keys

    def count_guess(self, keys: list[str]) -> None:
        """Count one guess against each of ``keys``; raise ``Throttled`` (counting nothing) if one is used up."""
        if self.rate is None:
            return
        now = time.time()
        wait = take(keys, self.rate, now=now)
        if wait is not None:
            raise Throttled(wait=math.ceil(wait))
        self.counted_in = _Window.at(now, self.rate).start

    def forgive(self, keys: list[str]) -> None:
        """Take back the guess :meth:`count_guess` counted against ``keys``: the password was right."""
        if self.rate is not None:
            give_back(keys, self.counted_in)


class FailedCredentialGuard(_Throttle):
    """Failed credentials other than passwords, per IP: after the rate, each further failure is a 429.

    Counted after the failure, not before the check as passwords are: a uuid (122 random bits) or a token (160)
    is not found by guessing, so what needs a bound is what failing callers cost (a scan, a client deleted but
    still polling), and counting before every check would cost every request a statement.
    """

    scope = "credentials"

    def count_failure(self, request: Any) -> None:
        """Count one failure of ``request``'s IP; raise ``Throttled`` once its rate is used up."""
        if self.rate is None:
            return
        wait = take([self.key(f"ip:{client_ip(request)}")], self.rate)
        if wait is not None:
            raise Throttled(wait=math.ceil(wait))


class TokenRouteThrottle(LoginGuard):
    """``POST /api-token-auth/``: every attempt is a guess (a right password as well: it could be the 10th try)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        self.count_guess(self.keys(request, username if isinstance(username, str) else None))
        return True
