"""Fixtures for driving the Lambda entry in-process."""

import json

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


# AWS Lambda's limit on an invocation's payload and on the payload it returns (synchronous invocations).
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


@pytest.fixture(autouse=True)
def within_lambda_payload_limits(monkeypatch):
    """Every event handed to the Lambda entry here, and every answer it gives, fits Lambda's 6 MB, as in AWS."""
    import service_initialization

    handler = service_initialization.handler

    def checked_handler(event, context):
        event_size = len(json.dumps(event))
        assert event_size <= LAMBDA_PAYLOAD_LIMIT, f"an event of {event_size} bytes could not reach a Lambda function"
        response = handler(event, context)
        size = len(json.dumps(response))
        assert size <= LAMBDA_PAYLOAD_LIMIT, f"a response of {size} bytes could not leave a Lambda function"
        return response

    monkeypatch.setattr(service_initialization, "handler", checked_handler)
