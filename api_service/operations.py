"""Events a deployment sends the functions once per deploy, not per request: migrate, and the first admin.

- ``{"detail": "update_metadata_db"}``: apply Django's migrations. Both functions accept it; deploys
  send it to the aggregator, whose 900 s timeout outlasts a long migration (the API's 30 s would not).
- ``{"detail": "bootstrap_admin"}`` (API function): create the first admin user from the Secrets
  Manager secret named by ``FMA_ADMIN_SECRET_ID`` (JSON ``{"username": ..., "password": ...}``), or
  leave things alone when an admin exists. The password never appears in an answer, log or error.
- ``{"detail": "delete_orphan_results"}`` (aggregator, after each deploy's migration): delete the result files
  no aggregate records that are older than the claim lease, and the update files no update records that are
  older than an hour, listing their folders (docs/aggregation.md).

Import after Django is set up (``cold_start.setup_django``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, transaction

from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.services import orphans_delete
from secrets_managers import get_secrets_manager

__all__ = [
    "MIGRATION_REQUEST",
    "ORPHAN_RESULTS_REQUEST",
    "bootstrap_admin",
    "delete_orphan_results",
    "is_bootstrap_admin_event",
    "is_migration_event",
    "migrate_metadata_db",
]

logger = logging.getLogger(__name__)

MIGRATION_REQUEST = "update_metadata_db"
ORPHAN_RESULTS_REQUEST = "delete_orphan_results"
_BOOTSTRAP_ADMIN_REQUEST = "bootstrap_admin"
ADMIN_SECRET_VARIABLE = "FMA_ADMIN_SECRET_ID"


def is_migration_event(event: dict[str, Any]) -> bool:
    """``{"detail": "update_metadata_db"}``, also inside an EventBridge envelope's detail."""
    return MIGRATION_REQUEST in str(event.get("detail", ""))


def is_bootstrap_admin_event(event: dict[str, Any]) -> bool:
    """Exactly ``{"detail": "bootstrap_admin"}``: creating a superuser is never guessed from a substring."""
    return event.get("detail") == _BOOTSTRAP_ADMIN_REQUEST


def _answer(status: int, data: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"data": data})}


def migrate_metadata_db() -> dict[str, Any]:
    """Apply every unapplied migration."""
    call_command("migrate", interactive=False, verbosity=0)
    return _answer(200, "database updated successfully")


def delete_orphan_results() -> dict[str, Any]:
    """Delete the stored files no row names: results no aggregate records, older than the claim lease (names
    stored before results were named after their claims, mostly), and update files no update records, older than
    ``UPDATE_ORPHAN_MIN_AGE`` (a request killed between writing the file and committing the row)."""
    deleted = orphans_delete(claim_lease=connector_from_settings().claim_lease)
    logger.info("delete_orphan_results: deleted %s", [*deleted.results, *deleted.updates])
    return _answer(200, str(deleted))


def _admin_credentials() -> tuple[str, str]:
    secret_id = os.environ.get(ADMIN_SECRET_VARIABLE, "")
    if not secret_id:
        raise ConfigurationError(
            f"bootstrap_admin needs the environment variable {ADMIN_SECRET_VARIABLE}: the id of a Secrets Manager "
            'secret holding {"username": ..., "password": ...}'
        )
    get_secret = get_secrets_manager(
        settings.API_SERVICE_SETTINGS["secrets_manager"], setting='API_SERVICE_SETTINGS["secrets_manager"]'
    )
    # An unreadable secret raises SecretUnavailableError, which names the secret and never its value.
    credentials = get_secret(secret_id)
    username = credentials.get("username") if isinstance(credentials, dict) else None
    password = credentials.get("password") if isinstance(credentials, dict) else None
    if not (isinstance(username, str) and username.strip() and isinstance(password, str) and password):
        # The value stays out of the message: it holds a password.
        raise ConfigurationError(
            f"Secret {secret_id!r} ({ADMIN_SECRET_VARIABLE}) must be JSON with non-empty "
            '"username" and "password" strings'
        )
    return username.strip(), password


def bootstrap_admin() -> dict[str, Any]:
    """Create the admin user of ``FMA_ADMIN_SECRET_ID`` unless that user or another superuser exists.

    An existing admin is never changed: its password may have been changed since, on purpose. Safe to
    repeat and to run concurrently (the username is unique; the loser of a race finds the user made).
    """
    username, password = _admin_credentials()
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists() or users.objects.filter(username=username).exists():
        logger.info("bootstrap_admin: an admin user exists; nothing changed")
        return _answer(200, "an admin user exists; nothing changed")
    try:
        with transaction.atomic():
            users.objects.create_superuser(username=username, password=password)
    except IntegrityError:
        logger.info("bootstrap_admin: %r was created meanwhile; nothing changed", username)
        return _answer(200, "an admin user exists; nothing changed")
    logger.info("bootstrap_admin: created the admin user %r", username)
    return _answer(201, f"admin user {username!r} created")
