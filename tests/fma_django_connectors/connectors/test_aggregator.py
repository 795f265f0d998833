"""``DjangoAggConnector.is_infrastructure_failure``: whose fault an error in an aggregation is."""

from __future__ import annotations

import errno

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError

from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError, InvalidWeightsError, ServiceUnavailableError


def client_error(code):
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "GetObject")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        ProgrammingError("permission denied for table fma_django_connectors_modelupdate"),
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        client_error("AccessDenied"),
        client_error("SlowDown"),
        OSError(errno.ENOSPC, "No space left on device"),
        ServiceUnavailableError("a secret could not be read"),
        ConfigurationError("a setting is wrong"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_deployments_failures(error):
    assert connector_from_settings().is_infrastructure_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("NoSuchKey"),
        client_error("404"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        InvalidWeightsError("not a valid safetensors file"),
        ValueError("shapes (3,) and (4,) do not match"),
        IntegrityError("duplicate key"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_datas_failures(error):
    assert not connector_from_settings().is_infrastructure_failure(error)
