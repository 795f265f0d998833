"""Every boto3 client of FMA is built here: short timeouts, bounded retries, one place to point at an emulator.

A Lambda in a VPC without a route to an AWS service would otherwise wait on boto3's defaults (60 s to
connect, 60 s to read, retried) and outlive its init or request limit without saying why. Here a call
to an unreachable service fails within seconds; the caller turns that into a message naming the service.

``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``), read by boto3 itself, points clients at a moto
server in tests. The timeouts can be tuned per deployment with the variables below.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from fma_core.exceptions import ConfigurationError

__all__ = ["aws_client", "client_config"]

# Variable → default. Connecting within the VPC (endpoint or NAT) takes milliseconds: two seconds is
# generous and still leaves room for a retry inside Lambda's 10 s init phase.
_TIMEOUT_DEFAULTS = {
    "FMA_AWS_CONNECT_TIMEOUT": 2.0,
    "FMA_AWS_READ_TIMEOUT": 10.0,
}
_MAX_ATTEMPTS_VARIABLE = "FMA_AWS_MAX_ATTEMPTS"
_MAX_ATTEMPTS_DEFAULT = 2


def _number(variable: str, default: float) -> float:
    raw = os.environ.get(variable)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{variable} must be positive, not {raw!r}")
    return value


def client_config() -> Any:
    """The ``botocore.config.Config`` every client gets (timeouts and retries from the environment)."""
    from botocore.config import Config

    attempts = _number(_MAX_ATTEMPTS_VARIABLE, _MAX_ATTEMPTS_DEFAULT)
    if attempts != int(attempts):
        raise ConfigurationError(f"{_MAX_ATTEMPTS_VARIABLE} must be a whole number, not {attempts!r}")
    return Config(
        connect_timeout=_number("FMA_AWS_CONNECT_TIMEOUT", _TIMEOUT_DEFAULTS["FMA_AWS_CONNECT_TIMEOUT"]),
        read_timeout=_number("FMA_AWS_READ_TIMEOUT", _TIMEOUT_DEFAULTS["FMA_AWS_READ_TIMEOUT"]),
        retries={"max_attempts": int(attempts), "mode": "standard"},
    )


@cache
def aws_client(service: str, *, region_name: str | None = None) -> Any:
    """The shared boto3 client of ``service`` (``"s3"``, ``"lambda"``, ...) in ``region_name`` (default: the
    environment's).

    Built on first use and kept: boto3 is slow to import and to create clients, and local runs never need it.
    Tests that change the environment call ``aws_client.cache_clear()``.
    """
    import boto3
    from botocore.config import Config

    config = client_config()
    if service == "s3":
        # Signature version 4 everywhere: presigned URLs then bind their headers (Content-Length of an upload),
        # and botocore would otherwise presign with the deprecated version 2 against some endpoints.
        config = config.merge(Config(signature_version="s3v4"))
    return boto3.client(service, region_name=region_name or os.environ.get("AWS_REGION"), config=config)
