"""Secrets from the environment only: the variable named like the secret holds its value."""

from __future__ import annotations

import os

from .base import SecretUnavailableError, SecretValue, decode_secret, secrets_managers


@secrets_managers.register("env")
def get_secret(secret_id: str, *, fresh: bool = False) -> SecretValue:
    """The value of the environment variable ``secret_id``, JSON containers decoded (never cached: ``fresh``
    changes nothing)."""
    try:
        return decode_secret(os.environ[secret_id])
    except KeyError:
        raise SecretUnavailableError(f"Secret {secret_id!r} is not set: no environment variable {secret_id}") from None
