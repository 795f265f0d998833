"""FMA's settings: every one in the table ``SETTINGS`` with its default and check; ``fma_settings`` reads them.

Shaped like Django REST framework's ``api_settings``: code reads ``fma_settings.FMA_UPLOAD_MAX_BYTES``, never
``settings.X`` or ``getattr(settings, "X", default)``, and gets the deployment's value, else the table's default,
checked. A settings module sets an FMA setting only to change it. At start-up (``FmaDjangoConnectorsConfig.ready``)
``check_settings`` checks every one, and refuses ``FMA_*`` names the table does not know (a typo would otherwise
be ignored) and removed settings; each message names the setting and its value.

Settings marked ``from_environment`` are also read from the environment variable of the same name, by the
settings modules alone (``environment_settings(os.environ)`` in ``settings_base``); a number then arrives as
text, which its check converts.

Adding a setting: one ``Setting(default, check, from_environment=...)`` line in ``SETTINGS``, a row in the
README's "Settings" table (a test compares the two), and code reads ``fma_settings.NAME``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fma_core.aws import AWS_DEFAULTS, AwsSettings
from fma_core.exceptions import ConfigurationError
from fma_core.settings import resolve_aggregator_settings, resolve_settings

__all__ = [
    "REMOVED_SETTINGS",
    "SETTINGS",
    "Setting",
    "aws_settings",
    "check_settings",
    "django_settings",
    "environment_settings",
    "fma_settings",
    "setting_value",
]

# A check: (setting name, value as given) → the value code gets; raises ConfigurationError naming both.
Check = Callable[[str, Any], Any]


def _number(name: str, value: Any, *, whole: bool) -> Any:
    """``value``, or the text of one as the environment gives it, as a finite number (a whole one if ``whole``)."""
    number = value
    if isinstance(value, str):
        try:
            number = int(value) if whole else float(value)
        except ValueError:
            number = None
    kinds = int if whole else int | float
    if isinstance(number, bool) or not isinstance(number, kinds) or not math.isfinite(number):
        raise ConfigurationError(f"{name} must be a {'whole number' if whole else 'number'}, not {value!r}")
    return number


def _bounded(name: str, value: Any, *, whole: bool, zero_allowed: bool) -> Any:
    number = _number(name, value, whole=whole)
    if number < 0 or (number == 0 and not zero_allowed):
        raise ConfigurationError(f"{name} must be {'at least 0' if zero_allowed else 'positive'}, not {value!r}")
    return number


def positive_int(name: str, value: Any) -> int:
    """A whole number above 0 (bytes, seconds, attempts)."""
    return int(_bounded(name, value, whole=True, zero_allowed=False))


def positive_float(name: str, value: Any) -> float:
    """A number of seconds above 0."""
    return float(_bounded(name, value, whole=False, zero_allowed=False))


def non_negative_float(name: str, value: Any) -> float:
    """A number of seconds, 0 allowed (0 switches a cache off)."""
    return float(_bounded(name, value, whole=False, zero_allowed=True))


def text(name: str, value: Any) -> str:
    """A string (possibly empty: a deployment's settings module decides whether it is required)."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, not {value!r}")
    return value


def optional_text(name: str, value: Any) -> str | None:
    """A string, or None for "not set"."""
    return None if value is None else text(name, value)


def throttle_rate(name: str, value: Any) -> str:
    """A DRF throttle rate (``"1000/min"``: requests per second, minute, hour or day), ``"none"`` (no brake), or
    ``""`` (not set)."""
    rate = text(name, value).strip()
    if rate in ("", "none") or re.fullmatch(r"\d+/(s|m|h|d)[a-z]*", rate):
        return rate
    raise ConfigurationError(f'{name} must be a rate such as "1000/min", or "none", not {value!r}')


def _aggregator_settings(name: str, value: Any) -> dict[str, Any]:
    # The core owns these defaults (fma_core.settings.AGGREGATOR_DEFAULTS): it runs without Django too.
    return resolve_aggregator_settings(value)


API_SERVICE_DEFAULTS: dict[str, Any] = {
    # Lambda handler serving API Gateway and ALB events (registry: fma_core.handlers).
    "handler": "django_lambda_handler",
    # Module of api_service.secrets_managers that provides secrets, and the secrets pulled at cold start.
    # aws_secrets reads an environment variable named like the secret first, so it also serves local work.
    "secrets_manager": "aws_secrets",
    "secrets_name": [],
}


def _api_service_settings(name: str, value: Any) -> dict[str, Any]:
    resolved = resolve_settings(name, value, API_SERVICE_DEFAULTS)
    for key in ("handler", "secrets_manager"):
        text(f'{name}["{key}"]', resolved[key])
    names = resolved["secrets_name"]
    if isinstance(names, str) or not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigurationError(f'{name}["secrets_name"] must be a list of secret ids, not {names!r}')
    return resolved


@dataclass(frozen=True)
class Setting:
    """One FMA setting: its default, its check, and whether the environment variable of its name may set it."""

    default: Any
    check: Check
    from_environment: bool = False


SETTINGS: dict[str, Setting] = {
    # --- Which implementations run (registry names, checked against the registries at start-up) ---------
    "API_SERVICE_SETTINGS": Setting({}, _api_service_settings),
    # Connector names, claim lease and memory budget of the aggregation (defaults: fma_core.settings).
    "AGGREGATOR_SETTINGS": Setting({}, _aggregator_settings),
    # What a stored update sets off: "local" (in-process thread), "lambda" (invoke AGGREGATOR_LAMBDA_ARN) or
    # "none" (fma_django_connectors.aggregation.triggers).
    "FMA_AGGREGATION_TRIGGER": Setting("local", text, from_environment=True),
    # Per-model aggregation schedules: "none" or "eventbridge-scheduler" (fma_django_connectors.aggregation.schedules).
    "FMA_SCHEDULER": Setting("none", text),
    "FMA_SCHEDULE_EXPRESSION": Setting("rate(1 minute)", text, from_environment=True),
    # The deployment's EventBridge Scheduler group and the role its schedules invoke the aggregator with; both
    # stacks create them, settings_remote requires them.
    "FMA_SCHEDULE_GROUP": Setting("", text, from_environment=True),
    "FMA_SCHEDULE_ROLE_ARN": Setting("", text, from_environment=True),
    # The aggregator Lambda the "lambda" trigger invokes and the schedules target; settings_remote requires it.
    "AGGREGATOR_LAMBDA_ARN": Setting("", text, from_environment=True),
    # With the local trigger, the local server sweeps for models with work left every this many seconds.
    "FMA_LOCAL_SWEEP_SECONDS": Setting(5.0, positive_float, from_environment=True),
    # The embedded default only (settings_local; settings_remote refuses it): the per-IP rate of anonymous calls and
    # registrations (REST_FRAMEWORK's "anon" and "registration"), "none" for no brake. Every client a simulation
    # runs on one machine registers from one address; "" keeps the deployment's rates (docs/security.md).
    "FMA_LOCAL_REGISTRATION_RATE": Setting("", throttle_rate, from_environment=True),
    # --- Uploads and downloads of weights (docs/api.md) --------------------------------------------------
    # Largest upload accepted by ``POST /api/v1/uploads/`` (a 100M-parameter float64 model is 800 MB).
    "FMA_UPLOAD_MAX_BYTES": Setting(2 * 1024**3, positive_int),
    # Largest ``json`` upload: JSON is parsed whole, its numbers held as Python objects (about three times the
    # document's size) within the API function's memory; binary formats are read a tensor at a time.
    "FMA_UPLOAD_JSON_MAX_BYTES": Setting(128 * 1024**2, positive_int),
    # How long an upload URL (and the upload) stays valid; an upload not completed by then is removed.
    "FMA_UPLOAD_LIFETIME_SECONDS": Setting(3600, positive_int),
    # How long a download URL of a 303 answer stays valid.
    "FMA_DOWNLOAD_LIFETIME_SECONDS": Setting(900, positive_int),
    # Lambda returns at most 6 MB (the whole response document: body, headers, and base64 for binary bodies);
    # the service keeps every response under it, locally too, so both answer alike.
    "FMA_RESPONSE_MAX_BYTES": Setting(6 * 1024 * 1024, positive_int),
    # --- AWS clients (fma_core.aws: why these defaults) ---------------------------------------------------
    "FMA_AWS_CONNECT_TIMEOUT": Setting(AWS_DEFAULTS.connect_timeout, positive_float, from_environment=True),
    "FMA_AWS_READ_TIMEOUT": Setting(AWS_DEFAULTS.read_timeout, positive_float, from_environment=True),
    "FMA_AWS_MAX_ATTEMPTS": Setting(AWS_DEFAULTS.max_attempts, positive_int, from_environment=True),
    "FMA_AWS_BEST_EFFORT_TIMEOUT": Setting(AWS_DEFAULTS.best_effort_timeout, positive_float, from_environment=True),
    # The region of clients not given one: the Lambda runtime sets AWS_REGION (boto3 reads only AWS_DEFAULT_REGION).
    "AWS_REGION": Setting(AWS_DEFAULTS.region, optional_text, from_environment=True),
    # Seconds a secret read from AWS Secrets Manager is kept by api_service.secrets_managers.aws_secrets (0: never).
    "FMA_SECRETS_CACHE_TTL": Setting(300.0, non_negative_float, from_environment=True),
    # --- Deploy-time operations (api_service/operations.py) ------------------------------------------------
    # Secret ids of the database's owner and of the application's least-privilege role (settings_remote sets them
    # from FMA_DB_SECRET_PATH and FMA_APP_DB_SECRET_PATH). With an application secret, the migration event runs as
    # the owner and creates or updates the role; empty: no role is managed.
    "FMA_DATABASE_OWNER_SECRET": Setting("", text),
    "FMA_DATABASE_APP_SECRET": Setting("", text),
    # Secrets Manager id of the first admin's {"username", "password"}; bootstrap_admin needs it.
    "FMA_ADMIN_SECRET_ID": Setting("", text, from_environment=True),
    # The Content-Security-Policy of the HTML pages (gateway/middleware.py); no page needs inline script.
    "FMA_CONTENT_SECURITY_POLICY": Setting(
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        text,
    ),
}

# Settings that no longer do anything, with what replaced them: a deployment still setting one is told so.
REMOVED_SETTINGS = {
    "INSTALLED_PACKAGES": "implementations are registered by fma_django_connectors/registrations.py at start-up",
}

_MISSING = object()


def setting_value(name: str, given: Mapping[str, Any]) -> Any:
    """The checked value of ``name`` from ``given`` (a settings module's names), else its default.

    Raises
    ------
    ConfigurationError
        The value fails the setting's check; the message names the setting and the value.
    """
    setting = SETTINGS[name]
    value = given.get(name, _MISSING)
    return setting.check(name, setting.default if value is _MISSING else value)


def environment_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings ``environ`` sets: each ``from_environment`` setting whose variable it holds, as text."""
    return {name: environ[name] for name, setting in SETTINGS.items() if setting.from_environment and name in environ}


def aws_settings(given: Mapping[str, Any]) -> AwsSettings:
    """The core's AWS client settings from ``given`` (a settings module's names, or Django's settings)."""
    return AwsSettings(
        connect_timeout=setting_value("FMA_AWS_CONNECT_TIMEOUT", given),
        read_timeout=setting_value("FMA_AWS_READ_TIMEOUT", given),
        max_attempts=setting_value("FMA_AWS_MAX_ATTEMPTS", given),
        best_effort_timeout=setting_value("FMA_AWS_BEST_EFFORT_TIMEOUT", given),
        region=setting_value("AWS_REGION", given),
    )


class _DjangoSettings(Mapping[str, Any]):
    """Django's settings seen as a mapping, read at every use: tests' ``override_settings`` take effect."""

    def __getitem__(self, name: str) -> Any:
        from django.conf import settings

        try:
            return getattr(settings, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Any:
        from django.conf import settings

        return iter(dir(settings))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class FmaSettings:
    """``fma_settings.NAME``: the deployment's value of an FMA setting, else its default; checked at each read.

    Not cached: every value is cheap to check, and a changed setting (tests) is seen at once.
    """

    def __init__(self, given: Mapping[str, Any]) -> None:
        self._given = given

    def __getattr__(self, name: str) -> Any:
        if name not in SETTINGS:
            raise AttributeError(f"{name!r} is not an FMA setting (fma_django_connectors.conf.SETTINGS)")
        return setting_value(name, self._given)


# Django's settings as a mapping, and the FMA settings among them.
django_settings = _DjangoSettings()
fma_settings = FmaSettings(django_settings)


def check_settings(given: Mapping[str, Any] | None = None) -> None:
    """Check every FMA setting of ``given`` (default: Django's settings); refuse ``FMA_*`` names not in the table.

    Raises
    ------
    ConfigurationError
        A removed setting is set; ``FMA_*`` settings the table does not know (all named, with their values); the
        first setting that fails its check (named, with its value).
    """
    given = django_settings if given is None else given
    removed = [name for name in REMOVED_SETTINGS if name in given]
    if removed:
        raise ConfigurationError("; ".join(f"{name} was removed: {REMOVED_SETTINGS[name]}" for name in removed))
    unknown = sorted(name for name in given if name.startswith("FMA_") and name not in SETTINGS)
    if unknown:
        raise ConfigurationError(
            f"Unknown FMA setting(s) {', '.join(f'{name}={given[name]!r}' for name in unknown)}; "
            "known: see fma_django_connectors/conf.py SETTINGS"
        )
    for name in SETTINGS:
        setting_value(name, given)
