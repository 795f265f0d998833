"""Every boto3 client of FMA is built here: short timeouts, bounded retries, one place to point at an emulator.

A Lambda in a VPC without a route to an AWS service would otherwise wait on boto3's defaults (60 s to
connect, 60 s to read, retried) and outlive its init or request limit without saying why. Here a call
to an unreachable service fails within seconds, and ``aws_errors`` turns the failure into an FMA error
naming the service and the setting an operator should look at.

``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``), read by boto3 itself, points clients at a moto
server in tests. The timeouts and the default region are given by the framework in use (``configure_aws``;
the Django project's ``FMA_AWS_*`` settings, see ``fma_django_connectors/conf.py``); the core never reads the
environment for them:

- ``connect_timeout`` and ``read_timeout`` (seconds, default 2);
- ``max_attempts`` (default 2: one retry);
- ``best_effort_timeout`` (seconds, default 1): connect and read timeout of *best-effort* clients,
  which make a single attempt. They serve calls that a request makes after its work is saved and whose
  failure something else recovers (the aggregator invoke after an update: the schedule sweeps up).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from fma_core.exceptions import FMAError, ServiceUnavailableError

__all__ = ["AWS_DEFAULTS", "AwsSettings", "aws_client", "aws_error", "aws_errors", "client_config", "configure_aws"]


@dataclass(frozen=True)
class AwsSettings:
    """How every client connects: timeouts in seconds, attempts counting the first, the default region."""

    # Connecting within the VPC (endpoint or NAT) takes milliseconds, and the calls FMA makes (GetSecretValue,
    # PutObject of a few MB, PutRule) answer well within a second: a service that accepts but does not answer
    # fails both attempts (2 s each, plus a backoff under 1 s) in about 5 s, leaving the imports room inside
    # Lambda's 10 s init phase.
    connect_timeout: float = 2.0
    read_timeout: float = 2.0
    max_attempts: int = 2
    # An asynchronous Lambda invoke or an EventBridge EnableRule answers in tens of milliseconds.
    best_effort_timeout: float = 1.0
    # None: boto3's own choice (AWS_DEFAULT_REGION, the config file).
    region: str | None = None


AWS_DEFAULTS = AwsSettings()
_settings = AWS_DEFAULTS


def configure_aws(settings: AwsSettings) -> AwsSettings:
    """Make ``settings`` those of every client built from now on (the clients built so far are dropped); the
    settings they replace."""
    global _settings
    previous, _settings = _settings, settings
    aws_client.cache_clear()
    return previous


def client_config(*, best_effort: bool = False, settings: AwsSettings | None = None) -> Any:
    """The ``botocore.config.Config`` every client gets (``settings``, default: the configured ones).

    Parameters
    ----------
    best_effort
        One attempt, connect and read timeouts of ``best_effort_timeout`` seconds.
    settings
        Timeouts and attempts; default: those given to ``configure_aws``.
    """
    from botocore.config import Config

    settings = settings or _settings
    if best_effort:
        connect, read, attempts = settings.best_effort_timeout, settings.best_effort_timeout, 1
    else:
        connect, read, attempts = settings.connect_timeout, settings.read_timeout, settings.max_attempts
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        # total_max_attempts counts the first attempt; botocore's max_attempts would count retries only.
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )


@cache
def aws_client(service: str, *, region_name: str | None = None, best_effort: bool = False) -> Any:
    """The shared boto3 client of ``service`` (``"s3"``, ``"lambda"``, ...) in ``region_name`` (default: the
    configured region); ``best_effort``: see ``client_config``.

    Built on first use and kept: boto3 is slow to import and to create clients, and local runs never need it.
    Tests that change the environment (``AWS_ENDPOINT_URL``) call ``aws_client.cache_clear()``.
    """
    import boto3
    from botocore.config import Config

    config = client_config(best_effort=best_effort)
    if service == "s3":
        # Signature version 4 everywhere: presigned URLs then bind their headers (Content-Length of an upload),
        # and botocore would otherwise presign with the deprecated version 2 against some endpoints.
        config = config.merge(Config(signature_version="s3v4"))
    return boto3.client(service, region_name=region_name or _settings.region, config=config)


@contextmanager
def aws_errors(
    action: str, *, service: str, setting: str, error: type[FMAError] = ServiceUnavailableError
) -> Iterator[None]:
    """Turn a botocore failure inside the block into ``error`` saying what failed and what to check.

    Parameters
    ----------
    action
        What was being done, the start of the message (``"Could not invoke the aggregator"``).
    service
        The AWS service's name as an operator knows it (``"AWS Lambda"``).
    setting
        The setting that names the resource (``"AGGREGATOR_LAMBDA_ARN"``).
    error
        The class raised, a ``ServiceUnavailableError`` by default.

    Raises
    ------
    FMAError
        ``error``, with the AWS error code and message when AWS answered, else the connection failure.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, action=action, service=service, setting=setting, error=error) from exc


def aws_error(
    exc: Exception, *, action: str, service: str, setting: str, error: type[FMAError] = ServiceUnavailableError
) -> FMAError:
    """The ``error`` that ``aws_errors`` raises for the botocore exception ``exc`` (see there)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError: AWS answered, and said no
        details = response.get("Error", {})
        reason = f"{details.get('Code', 'error')} {details.get('Message', '')}".strip()
        return error(f"{action}: {service} refused the call: {reason} (check {setting} and the IAM role)")
    return error(
        f"{action}: {service} is unreachable ({exc}); check the network route to it (VPC endpoint or NAT) and {setting}"
    )
