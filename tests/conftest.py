"""Shared fixtures and markers."""

import socket

import pytest
from django.conf import settings
from hypothesis import settings as hypothesis_settings

from fma_core.aws import aws_client, configure_aws
from tests.schedules_support import scheduler  # noqa: F401  (a fixture: moto's EventBridge Scheduler)

# No timed assertions in the suite (timings belong in bench/): Hypothesis' per-example deadline (200 ms) fails
# property tests at random on a busy machine, when one example happens to wait for the CPU.
hypothesis_settings.register_profile("fma", deadline=None)
hypothesis_settings.load_profile("fma")


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (FMA_TEST_DATABASE=postgres)")
    for item in items:
        if "requires_postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_aws_clients():
    """boto3 clients read the environment (endpoint, region, timeouts) when built: none outlives its test."""
    aws_client.cache_clear()
    yield
    aws_client.cache_clear()


@pytest.fixture
def silent_endpoint():
    """An AWS endpoint URL with nothing behind it: a port that accepts connections and never answers
    (the kernel completes the handshake; nobody reads), as a service looks from a VPC without a route back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def aws_settings():
    """``configure_aws`` for one test (call it with an ``AwsSettings``); the settings before it come back after."""
    previous = []

    def apply(given):
        previous.append(configure_aws(given))

    yield apply
    if previous:
        configure_aws(previous[0])
