"""Requests sent at once by many Lambda containers: each event served by its own handler, released together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from apig_wsgi import make_lambda_handler
from django.core.wsgi import get_wsgi_application
from django.db import connection

from tests.events import make_context


def all_at_once(events):
    """The status codes of ``events``, each served by its own handler (its own WSGI application and connection)."""
    start = threading.Barrier(len(events))

    def serve(event):
        handler = make_lambda_handler(get_wsgi_application(), binary_support=True)
        try:
            start.wait()
            return handler(event, make_context())["statusCode"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(serve, events))
