"""The database credentials held by a secret; no Django import, so that settings modules can use it."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from federated_learning_project.settings_base import secrets_manager
from secrets_managers import read_secret

# The variable settings_remote takes the secret id from, named in every error.
SETTING = "FMA_DB_SECRET_PATH"


def database_credentials(secret_id: str, *, fresh: bool = False) -> tuple[str, str]:
    """``(username, password)`` from the secret ``secret_id``; ``fresh`` bypasses the secrets cache.

    Raises ``SecretUnavailableError`` when the secret cannot be read, ``ImproperlyConfigured`` when it does
    not hold the two strings; neither message carries the value.
    """
    credentials = read_secret(secrets_manager(), secret_id, setting=SETTING, fresh=fresh)
    if not (
        isinstance(credentials, dict)
        and isinstance(credentials.get("username"), str)
        and isinstance(credentials.get("password"), str)
    ):
        raise ImproperlyConfigured(
            f'Secret {secret_id!r} ({SETTING}) must be JSON with "username" and "password" strings'
        )
    return credentials["username"], credentials["password"]
