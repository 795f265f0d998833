"""Settings shared by every deployment; ``settings_local`` and ``settings_remote`` complete them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fma_core.aws import configure_aws
from fma_django_connectors.conf import aws_settings, environment_settings, setting_value
from secrets_managers import aws_secrets, get_secrets_manager
from secrets_managers.base import GetSecret

API_SERVICE_DIR = Path(__file__).resolve().parent.parent
REPOSITORY_DIR = API_SERVICE_DIR.parent

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "fma_django_connectors",
    "fma_django_connectors.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fma_django_connectors.gateway.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "federated_learning_project.urls"
WSGI_APPLICATION = "federated_learning_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = API_SERVICE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # Basic first: its challenge makes a missing credential a 401 (see the API contract).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fma_django_connectors.access.authentication.GuardedBasicAuthentication",
        "fma_django_connectors.access.authentication.GuardedTokenAuthentication",
        "fma_django_connectors.access.authentication.ClientUUIDAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["fma_django_connectors.api.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["fma_django_connectors.api.parsers.ORJSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "fma_django_connectors.exceptions.exception_handler",
    # ``?format=`` names the weights format of a download (docs/api.md), not a renderer.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "fma_django_connectors.api.openapi.AutoSchema",
    # Brakes (fma_django_connectors/access/throttling.py); each class counts only the callers of its kind.
    "DEFAULT_THROTTLE_CLASSES": [
        "fma_django_connectors.access.throttling.ClientRateThrottle",
        "fma_django_connectors.access.throttling.DeveloperRateThrottle",
        "fma_django_connectors.access.throttling.AnonymousRateThrottle",
        "fma_django_connectors.access.throttling.RegistrationRateThrottle",
    ],
    # Defaults that stop password guessing and mass registration without slowing a fleet of clients;
    # API Gateway's stage throttling stays the outer limit. A rate of None switches its brake off.
    "DEFAULT_THROTTLE_RATES": {
        "client": "600/min",  # each federated client (CLIENT-UUID)
        "user": "1200/min",  # each developer (Basic, token, session)
        "anon": "120/min",  # each IP without credentials
        "registration": "30/min",  # each IP registering new clients without credentials
        "login": "10/min",  # token route attempts, failed Basic and form passwords, per IP and per username
        "credentials": "30/min",  # failed CLIENT-UUIDs and tokens, malformed Basic headers, per IP
    },
}

# The OpenAPI description at /api/schema/ and its interactive docs at /api/docs/ (docs/api.md); the docs'
# assets come from drf-spectacular-sidecar through the static files, so no page loads anything from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "FMA API",
    "DESCRIPTION": "Federated Model Aggregation: federated models, clients' updates, aggregates, scores and "
    'artifacts. Clients authenticate with `CLIENT-UUID` (and, on models with `client_auth: "signed"`, sign each '
    "request with their Ed25519 key, RFC 9421: see the `signatureInput` security scheme), developers with a "
    "token, Basic or the admin session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Tags and operation ids are made from the path below it: one tag per resource, ids such as ``models_list``.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fma_django_connectors.api.openapi.add_error_responses",
    ],
}

# Django's cache, shared by every Lambda container through the metadata database (a migration creates the table).
# No rule of the service relies on it: signed requests' nonces (access/nonces.py) and throttle counts
# (access/throttling.py) have tables of their own, which never cull a row to make room.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "fma_cache",
        # Expired rows are culled as the table grows past this.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}

# Largest request body accepted, in bytes; API Gateway itself stops at 10 MB and Lambda at 6 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# --- FMA's own settings ------------------------------------------------------------------------------
# Every one, with its default and its check, is in the table of fma_django_connectors/conf.py (SETTINGS); a
# settings module sets only what its deployment changes, and code reads them as ``fma_settings.NAME``.
# Registry names of the handler and secrets manager, secrets pulled at cold start: {} keeps the defaults.
API_SERVICE_SETTINGS: dict[str, Any] = {}
# Connectors, claim lease and memory budget of the aggregation: {} keeps the core's defaults.
AGGREGATOR_SETTINGS: dict[str, Any] = {}

# The FMA settings the environment may set, by the variable of the same name (FMA_AWS_*, AGGREGATOR_LAMBDA_ARN,
# FMA_SCHEDULE_EXPRESSION, ...: the table marks them); their checks turn the text into numbers.
globals().update(environment_settings(os.environ))

# Clients built while the settings load (the secrets of settings_remote) get the deployment's timeouts already;
# FmaDjangoConnectorsConfig.ready configures them again from the final settings.
configure_aws(aws_settings(globals()))
aws_secrets.cache_ttl_seconds = setting_value("FMA_SECRETS_CACHE_TTL", globals())


def secrets_manager() -> GetSecret:
    """The reader of the secrets manager ``API_SERVICE_SETTINGS`` names, for the settings modules, which read
    secrets before Django's settings exist."""
    name = setting_value("API_SERVICE_SETTINGS", globals())["secrets_manager"]
    return get_secrets_manager(name, setting='API_SERVICE_SETTINGS["secrets_manager"]')
