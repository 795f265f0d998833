"""A clean AWS environment for every secrets test: fake credentials, no endpoint override, empty cache."""

import socket

import pytest

from secrets_managers import aws_secrets

AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT",
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_secrets.clear_cache()
    yield
    aws_secrets.clear_cache()


@pytest.fixture
def unused_port():
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
