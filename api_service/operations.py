"""Events a deployment sends the functions once per deploy, not per request: migrate, and the first admin.

- ``{"detail": "update_metadata_db"}``: apply Django's migrations. Both functions accept it; deploys
  send it to the aggregator, whose 900 s timeout outlasts a long migration (the API's 30 s would not).
  With ``FMA_APP_DB_SECRET_PATH`` (the application's least-privilege role) it runs as the database's owner
  (``FMA_DB_SECRET_PATH``), then creates or updates that role: rows only, no schema.
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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction

from federated_learning_project.postgresql_secret.credentials import database_credentials
from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.services import orphans_delete
from secrets_managers import get_secrets_manager

__all__ = [
    "MIGRATION_REQUEST",
    "ORPHAN_RESULTS_REQUEST",
    "application_role_update",
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
# The variables settings_remote takes the database owner's and the application role's secret ids from.
OWNER_SECRET_VARIABLE = "FMA_DB_SECRET_PATH"
APP_SECRET_VARIABLE = "FMA_APP_DB_SECRET_PATH"


def is_migration_event(event: dict[str, Any]) -> bool:
    """``{"detail": "update_metadata_db"}``, also inside an EventBridge envelope's detail."""
    return MIGRATION_REQUEST in str(event.get("detail", ""))


def is_bootstrap_admin_event(event: dict[str, Any]) -> bool:
    """Exactly ``{"detail": "bootstrap_admin"}``: creating a superuser is never guessed from a substring."""
    return event.get("detail") == _BOOTSTRAP_ADMIN_REQUEST


def _answer(status: int, data: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"data": data})}


def migrate_metadata_db() -> dict[str, Any]:
    """Apply every unapplied migration; with an application role configured, as the database's owner, and then
    create or update that role (``application_role_update``)."""
    if not settings.FMA_DATABASE_APP_SECRET:
        call_command("migrate", interactive=False, verbosity=0)
        return _answer(200, "database updated successfully")
    with _as_database_owner():
        call_command("migrate", interactive=False, verbosity=0)
        application_role_update()
    return _answer(200, "database updated successfully")


@contextmanager
def _as_database_owner() -> Iterator[None]:
    """The default connection as the owner of ``FMA_DB_SECRET_PATH`` for the block, as the application after it.

    The functions connect as the application role, which may not change the schema; only this event needs the
    owner, so its secret is read here and nowhere else (the API function need not be allowed to read it).
    """
    connection = connections[DEFAULT_DB_ALIAS]
    user, password = database_credentials(settings.FMA_DATABASE_OWNER_SECRET, setting=OWNER_SECRET_VARIABLE)
    # The keys the postgresql_secret backend connects (and, on a refused password, re-reads a secret) with.
    keys = ("USER", "PASSWORD", "CREDENTIALS_SECRET", "CREDENTIALS_SETTING")
    saved = {key: connection.settings_dict.get(key) for key in keys}
    connection.close()
    connection.settings_dict.update(
        USER=user,
        PASSWORD=password,
        CREDENTIALS_SECRET=settings.FMA_DATABASE_OWNER_SECRET,
        CREDENTIALS_SETTING=OWNER_SECRET_VARIABLE,
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def application_role_update() -> str:
    """Create the application role of ``FMA_APP_DB_SECRET_PATH``, or bring it up to date; its name.

    Run as the database's owner, after the migrations (each deploy), so tables a migration added are granted too.
    The role may log in with the secret's password, read and write the rows of every table in the schema and use
    its sequences, and nothing else: no DDL (it owns nothing, and ``CREATE`` on the schema is revoked from
    ``PUBLIC``, which PostgreSQL before 15 grants), no new roles or databases. The password is sent as a
    SCRAM-SHA-256 verifier computed here, so the statement never carries it.

    Raises
    ------
    ConfigurationError
        The application secret names the owner itself (the role's limits would be put on the owner).
    """
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password

    role, password = database_credentials(settings.FMA_DATABASE_APP_SECRET, setting=APP_SECRET_VARIABLE)
    connection = connections[DEFAULT_DB_ALIAS]
    if role == connection.settings_dict["USER"]:
        raise ConfigurationError(
            f"{APP_SECRET_VARIABLE} and {OWNER_SECRET_VARIABLE} name the same database user {role!r}: the "
            "application role must be a user of its own"
        )
    identifier = sql.Identifier(role)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg2's own cursor: it composes psycopg2.sql statements
        verifier = encrypt_password(password, role, connection.connection, "scram-sha-256")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        verb = sql.SQL("ALTER ROLE {} WITH" if cursor.fetchone() else "CREATE ROLE {} WITH").format(identifier)
        raw.execute(
            sql.SQL("{} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %s").format(verb), [verifier]
        )
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = (sql.Identifier(name) for name in cursor.fetchone())
        for statement in _APPLICATION_GRANTS:
            raw.execute(sql.SQL(statement).format(role=identifier, database=database, schema=schema))
    logger.info("application database role %r is up to date", role)
    return role


# Rows, not schema: what the functions do at run time (select_for_update needs UPDATE, inserts the sequences).
_APPLICATION_GRANTS = (
    "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
    "GRANT CONNECT ON DATABASE {database} TO {role}",
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    # Tables and sequences the owner creates later outside this event (a migration run by hand) as well.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
)


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
