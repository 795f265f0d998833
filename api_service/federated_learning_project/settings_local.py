"""The embedded default: SQLite file, model data on local disk, aggregation in-process.

Needs no environment variable; ``FMA_LOCAL_DATABASE_URL=postgres://...`` moves the database to PostgreSQL
(docs/local-development.md says when that is worth it). Everything it writes lives in ``FMA_LOCAL_DATA_DIR``
(default ``<repository>/.local``): the database, uploaded model data and the generated secret key.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from federated_learning_project.settings_base import *  # noqa: F403
from federated_learning_project.settings_base import AGGREGATOR_SETTINGS, REPOSITORY_DIR, REST_FRAMEWORK
from fma_django_connectors.conf import positive_float, positive_int, setting_value

LOCAL_DATA_DIR = Path(os.environ.get("FMA_LOCAL_DATA_DIR", REPOSITORY_DIR / ".local"))
LOCAL_DATA_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret_key() -> str:
    """A key made once per checkout and kept beside the database, so sessions survive restarts."""
    if key := os.environ.get("FMA_SECRET_KEY"):
        return key
    key_file = LOCAL_DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _local_secret_key()
DEBUG = os.environ.get("FMA_DEBUG", "false").lower() == "true"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]


MINIMUM_SQLITE = (3, 35)
# Each of the local server's handler workers keeps its connection between requests, as a Lambda container does.
CONNECTION_REUSE_SECONDS = 60


def _local_database() -> dict[str, object]:
    """SQLite in the data folder; PostgreSQL when ``FMA_LOCAL_DATABASE_URL`` names one (postgres://user:pw@host/db)."""
    url = os.environ.get("FMA_LOCAL_DATABASE_URL")
    if not url:
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
            raise ImproperlyConfigured(
                f"SQLite {sqlite3.sqlite_version} is too old for the embedded default, which needs "
                f"{'.'.join(map(str, MINIMUM_SQLITE))} or later (the throttles count with INSERT ... RETURNING); "
                "use a Python built with a newer SQLite, or set FMA_LOCAL_DATABASE_URL to a PostgreSQL database."
            )
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": LOCAL_DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # Aggregations claim updates while requests write them: wait for the lock instead of failing.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                # WAL: readers never wait for the writer, and a commit is an append; NORMAL syncs at checkpoints,
                # which WAL keeps consistent after a crash (a power cut may lose the last commits, not the file).
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
            "CONN_MAX_AGE": CONNECTION_REUSE_SECONDS,
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise ImproperlyConfigured(
            f"FMA_LOCAL_DATABASE_URL must look like postgres://user:password@host:5432/name, not {parts.scheme}://..."
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.strip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": CONNECTION_REUSE_SECONDS,
    }


DATABASES = {"default": _local_database()}

MEDIA_ROOT = LOCAL_DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the admin's static files straight from the installed apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = True
# Nothing is collected locally; without a STATIC_ROOT whitenoise does not look for (and warn about) the folder.
STATIC_ROOT = None

# The FMA defaults suit this deployment: no per-model schedules (FMA_SCHEDULER "none"), aggregation in this
# process when an update arrives (FMA_AGGREGATION_TRIGGER "local", or "none" from the environment to leave it to
# `manage.py run_aggregator`), the local server's sweep every FMA_LOCAL_SWEEP_SECONDS.
if lease := os.environ.get("FMA_CLAIM_LEASE_SECONDS"):
    AGGREGATOR_SETTINGS = {
        **AGGREGATOR_SETTINGS,
        "claim_lease_seconds": positive_float("FMA_CLAIM_LEASE_SECONDS", lease),
    }
if budget := os.environ.get("FMA_MEMORY_BUDGET_BYTES"):
    AGGREGATOR_SETTINGS = {
        **AGGREGATOR_SETTINGS,
        "memory_budget_bytes": positive_int("FMA_MEMORY_BUDGET_BYTES", budget),
    }

# A simulation of many clients on this machine registers every one from the same address, which the per-IP brakes
# on anonymous calls would hold to a few dozen a minute: FMA_LOCAL_REGISTRATION_RATE replaces those two rates here.
if local_rate := setting_value("FMA_LOCAL_REGISTRATION_RATE", globals()):
    REST_FRAMEWORK = {
        **REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **dict.fromkeys(("anon", "registration"), None if local_rate == "none" else local_rate),
        },
    }
