"""``SECRET_KEY`` of a deployment: from the environment, else from the secrets manager; never a constant.

``FMA_SECRET_KEY`` holds the key itself (local work); otherwise ``FMA_SECRET_KEY_SECRET_ID`` names the
secret (plain text) read through ``API_SERVICE_SETTINGS["secrets_manager"]``.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from federated_learning_project.settings_base import secrets_manager
from secrets_managers import read_secret


def _secret_key() -> str:
    if key := os.environ.get("FMA_SECRET_KEY"):
        return key
    secret_id = os.environ.get("FMA_SECRET_KEY_SECRET_ID")
    if not secret_id:
        raise ImproperlyConfigured(
            "SECRET_KEY is not configured: set FMA_SECRET_KEY_SECRET_ID to the id of the secret holding it "
            "(or FMA_SECRET_KEY to the key itself)"
        )
    key = read_secret(secrets_manager(), secret_id, setting="FMA_SECRET_KEY_SECRET_ID")
    if not isinstance(key, str) or not key:
        raise ImproperlyConfigured(f"Secret {secret_id!r} (FMA_SECRET_KEY_SECRET_ID) must hold the key as plain text")
    return key


SECRET_KEY = _secret_key()
