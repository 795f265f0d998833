"""AWS: PostgreSQL (RDS) with credentials from Secrets Manager, model data on S3, aggregation by Lambda.

Read from the environment (a missing one stops the start, naming it):

- ``FMA_DATABASE_NAME``, ``FMA_DATABASE_HOST``, ``FMA_DATABASE_PORT``;
- ``FMA_DB_SECRET_PATH``: Secrets Manager id of the database owner's credentials (RDS's master user), RDS form
  ``{"username": ..., "password": ...}``;
- ``FMA_MODEL_DATA_BUCKET``: S3 bucket of the weights files;
- ``TRUSTED_ORIGIN`` and ``AGGREGATOR_LAMBDA_ARN``: the defaults below, overridden by the environment;
- ``FMA_SCHEDULE_GROUP`` and ``FMA_SCHEDULE_ROLE_ARN``: the deployment's EventBridge Scheduler group and
  the role its schedules invoke the aggregator with;
- ``FMA_SECRET_KEY_SECRET_ID`` (or ``FMA_SECRET_KEY``): see ``settings_secret``.

Optional: ``FMA_APP_DB_SECRET_PATH`` (the application role's credentials, same form: the functions connect as
it, and the migration event creates it; see ``operations``), ``FMA_URL_PREFIX`` (API Gateway stage, e.g.
``/Prod``), ``FMA_DATABASE_SSLMODE`` (default ``verify-full`` against the RDS CA bundle shipped in ``certs/``;
``disable`` for a local PostgreSQL without TLS), ``FMA_DB_CONN_MAX_AGE`` (seconds, default 600), and the FMA
settings the environment may set (``FMA_SCHEDULE_EXPRESSION``, ``FMA_SECRETS_CACHE_TTL``, the ``FMA_AWS_*``
timeouts, ...: read in ``settings_base``, defaults in ``fma_django_connectors/conf.py``). Static files: see
``settings_static``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from federated_learning_project.postgresql_secret.credentials import database_credentials
from federated_learning_project.settings_secret import SECRET_KEY  # noqa: F401  (a Django setting)
from federated_learning_project.settings_static import *  # noqa: F403
from federated_learning_project.settings_static import STORAGES
from fma_django_connectors.conf import setting_value
from secrets_managers import pull_secrets

# A deployment may pin these here; the environment wins. Left empty, the variable is required.
_DEFAULT_TRUSTED_ORIGIN = ""
_DEFAULT_AGGREGATOR_LAMBDA_ARN = ""
# The CAs of RDS and RDS Proxy (certs/README.md says where they come from): verify-full checks the
# server's chain and host name, so a host that merely offers TLS cannot stand in for the database.
RDS_CA_BUNDLE = Path(__file__).resolve().parents[1] / "certs" / "rds-global-bundle.pem"


def _require(name: str, default: str = "") -> str:
    value = os.environ.get(name) or default
    if not value:
        raise ImproperlyConfigured(f"settings_remote needs the environment variable {name}")
    return value


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def _trusted_hosts(origins: str) -> list[str]:
    """Hosts of ``TRUSTED_ORIGIN``: comma-separated hosts or ``https://host[:port]`` origins.

    A leading dot (``.execute-api.us-east-1.amazonaws.com``) stands for every subdomain, as in ``ALLOWED_HOSTS``.
    """
    hosts = []
    for origin in filter(None, (part.strip() for part in origins.split(","))):
        parts = urlsplit(origin if "://" in origin else f"https://{origin}")
        if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ImproperlyConfigured(f"TRUSTED_ORIGIN entries must be hosts or https origins, not {origin!r}")
        hosts.append(parts.netloc)
    return hosts


def _url_prefix(raw: str) -> str:
    """``/Prod`` from ``Prod``, ``/Prod/`` or ``/Prod``; ``""`` for none."""
    stripped = raw.strip("/")
    return f"/{stripped}" if stripped else ""


DEBUG = False

# The per-IP brakes protect a deployment; lifting them is for simulations on one machine (settings_local).
if setting_value("FMA_LOCAL_REGISTRATION_RATE", globals()):
    raise ImproperlyConfigured(
        "FMA_LOCAL_REGISTRATION_RATE is honoured by the embedded default (settings_local) only: a deployment keeps "
        'REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; unset it'
    )

# Cold start: every listed secret must be readable now, not at the first request that needs it.
pull_secrets(setting_value("API_SERVICE_SETTINGS", globals()), setting="API_SERVICE_SETTINGS")
pull_secrets(setting_value("AGGREGATOR_SETTINGS", globals()), setting="AGGREGATOR_SETTINGS")

# --- HTTP behind API Gateway -------------------------------------------------------------------
TRUSTED_ORIGIN = _require("TRUSTED_ORIGIN", _DEFAULT_TRUSTED_ORIGIN)
ALLOWED_HOSTS = _trusted_hosts(TRUSTED_ORIGIN)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(f"TRUSTED_ORIGIN names no host: {TRUSTED_ORIGIN!r}")
# CSRF_TRUSTED_ORIGINS spells "every subdomain" with a wildcard instead of a leading dot.
CSRF_TRUSTED_ORIGINS = [f"https://*{host}" if host.startswith(".") else f"https://{host}" for host in ALLOWED_HOSTS]

# The stage of the default execute-api URL (``/Prod``) is not in the path Lambda receives, so Django
# must add it to every URL it builds; whitenoise strips it again when matching static files.
URL_PREFIX = _url_prefix(os.environ.get("FMA_URL_PREFIX", ""))
FORCE_SCRIPT_NAME = URL_PREFIX or None
STATIC_URL = f"{URL_PREFIX}/static/"

# API Gateway and ALBs terminate TLS and say so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SILENCED_SYSTEM_CHECKS = [
    # HSTS preloading is a decision about a whole registrable domain (submitted to browser vendors); an
    # execute-api host cannot be preloaded and a custom domain's owner decides it outside this service.
    "security.W021",
]

# --- Metadata database -------------------------------------------------------------------------
# The database's owner (RDS's master user): migrations run as it, and it keeps the application role up to date.
FMA_DATABASE_OWNER_SECRET = _require("FMA_DB_SECRET_PATH")
# The least-privilege role the functions connect as, when one is given (docs/aws.md, "The application's database
# role"); its secret alone is read at cold start. Without it they connect as the owner.
FMA_DATABASE_APP_SECRET = os.environ.get("FMA_APP_DB_SECRET_PATH", "")
_database_secret, _database_setting = (
    (FMA_DATABASE_APP_SECRET, "FMA_APP_DB_SECRET_PATH")
    if FMA_DATABASE_APP_SECRET
    else (FMA_DATABASE_OWNER_SECRET, "FMA_DB_SECRET_PATH")
)
_database_user, _database_password = database_credentials(_database_secret, setting=_database_setting)
DATABASES = {
    "default": {
        # PostgreSQL that reads the secret again when the password it holds is refused (rotation).
        "ENGINE": "federated_learning_project.postgresql_secret",
        "CREDENTIALS_SECRET": _database_secret,
        "CREDENTIALS_SETTING": _database_setting,
        "NAME": _require("FMA_DATABASE_NAME"),
        "HOST": _require("FMA_DATABASE_HOST"),
        "PORT": _int("FMA_DATABASE_PORT", _require("FMA_DATABASE_PORT")),
        "USER": _database_user,
        "PASSWORD": _database_password,
        # Keep the connection across warm invocations; check it before reuse, since a frozen container's
        # connection may have been closed by the server meanwhile.
        "CONN_MAX_AGE": _int("FMA_DB_CONN_MAX_AGE", os.environ.get("FMA_DB_CONN_MAX_AGE", "600")),
        "CONN_HEALTH_CHECKS": True,
        # QuerySet.iterator() would open a server-side cursor, WITH HOLD outside a transaction: a cursor that
        # outlives its transaction pins the connection to one client in RDS Proxy (or breaks under any
        # transaction pooler). Off everywhere, proxy or not: the few iterator() calls read ids and names, which a
        # client-side cursor holds easily, and one setting cannot then be forgotten when a proxy is added.
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "OPTIONS": {
            "sslmode": os.environ.get("FMA_DATABASE_SSLMODE", "verify-full"),
            "sslrootcert": str(RDS_CA_BUNDLE),
            "connect_timeout": 10,
        },
    }
}

# --- Model data ----------------------------------------------------------------------------------
STORAGES = {
    **STORAGES,
    "default": {
        # django-storages' S3 storage with the bounded timeouts and retries of fma_core.aws.
        "BACKEND": "fma_django_connectors.storage.s3.BoundedS3Storage",
        # Files are private (the bucket blocks public access) and reached only through the API.
        "OPTIONS": {"bucket_name": _require("FMA_MODEL_DATA_BUCKET"), "default_acl": None, "file_overwrite": False},
    },
}

# --- Aggregation -----------------------------------------------------------------------------------
AGGREGATOR_LAMBDA_ARN = _require("AGGREGATOR_LAMBDA_ARN", _DEFAULT_AGGREGATOR_LAMBDA_ARN)
FMA_AGGREGATION_TRIGGER = "lambda"
FMA_SCHEDULER = "eventbridge-scheduler"
# The deployment's EventBridge Scheduler group (its stack creates and deletes it) and the role the schedules
# invoke the aggregator with (fma_django_connectors.aggregation.schedules).
FMA_SCHEDULE_GROUP = _require("FMA_SCHEDULE_GROUP")
FMA_SCHEDULE_ROLE_ARN = _require("FMA_SCHEDULE_ROLE_ARN")
