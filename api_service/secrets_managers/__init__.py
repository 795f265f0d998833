"""Secrets managers, chosen by name in ``API_SERVICE_SETTINGS`` / ``AGGREGATOR_SETTINGS["secrets_manager"]``.

- ``aws_secrets``: AWS Secrets Manager (boto3, or the Lambda extension), cached with a TTL;
  an environment variable named like the secret overrides it.
- ``env``: the environment only.

``secrets_name`` lists the secrets pulled at cold start (``pull_secrets``), so that a missing one stops
the start-up with a message naming it instead of failing a request later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fma_core.exceptions import ConfigurationError

from . import aws_secrets, env  # noqa: F401  (each registers itself)
from .base import GetSecret, SecretUnavailableError, SecretValue, secrets_managers

__all__ = ["SecretUnavailableError", "get_secrets_manager", "pull_secrets", "read_secret", "secrets_managers"]


def get_secrets_manager(name: str, *, setting: str) -> GetSecret:
    """The ``get_secret(secret_id)`` function of the manager registered as ``name`` (read from ``setting``)."""
    return secrets_managers.get(name, setting=setting)


def pull_secrets(service_settings: Mapping[str, Any], *, setting: str) -> dict[str, SecretValue]:
    """Read every secret ``service_settings["secrets_name"]`` lists, through its ``secrets_manager``.

    ``setting`` is the settings dict's name, used in errors. Raises ``SecretUnavailableError`` naming the
    first secret that cannot be read, ``ConfigurationError`` for an unknown manager or a malformed list.
    """
    get_secret = get_secrets_manager(service_settings["secrets_manager"], setting=f'{setting}["secrets_manager"]')
    names = service_settings.get("secrets_name", [])
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ConfigurationError(f'{setting}["secrets_name"] must be a list of secret ids')
    return {name: get_secret(name) for name in names}


def read_secret(get_secret: GetSecret, secret_id: str, *, setting: str, fresh: bool = False) -> SecretValue:
    """``get_secret(secret_id)``; should it fail, the error also names ``setting``, the variable giving the id."""
    try:
        return get_secret(secret_id, fresh=fresh)
    except SecretUnavailableError as exc:
        raise SecretUnavailableError(f"{exc} (the secret {setting} names)") from exc
