"""Fixtures for driving the Lambda entry in-process."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@pytest.fixture
def keep_test_connection():
    """Keep the test's database connection across requests served by the real WSGI handler.

    At the end of each request Django closes connections, as it must in Lambda; inside a test's
    transaction that would drop the test's data. Django's own test client disconnects the same signals.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
