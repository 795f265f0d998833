"""One database-connection lifecycle for every Lambda event, HTTP or not: ``django_invocation()``.

Django opens, health-checks and closes its connections around an HTTP request through two signals:
``request_started`` and ``request_finished`` run ``close_old_connections``, which closes a connection older
than ``CONN_MAX_AGE``, one left in error, or (``CONN_HEALTH_CHECKS``) one that no longer answers, so the next
query opens a new one. Events that are not HTTP requests (an aggregation, a migration, the first admin) pass
no WSGI handler, so nothing sends them: a connection the server dropped while the container was warm (an
RDS Proxy's idle timeout, a failover, a maintenance reboot) would stay, and every later event fail on it.
``django_invocation()`` sends both signals around such an event, exactly as the WSGI handler does around a
request, so the same receivers (and settings) govern both.

Import after Django is set up (``cold_start.setup_django``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.signals import request_finished, request_started

__all__ = ["django_invocation"]


class _LambdaInvocation:
    """The sender of the signals (Django's handlers send their own class)."""


@contextmanager
def django_invocation() -> Iterator[None]:
    """Run the block as Django runs a request: ``request_started`` before, ``request_finished`` after (even when
    it raises, so a connection left broken is closed before the next event)."""
    request_started.send(sender=_LambdaInvocation, environ={})
    try:
        yield
    finally:
        request_finished.send(sender=_LambdaInvocation)
