"""settings_local, the embedded default: loaded in a fresh interpreter, as the local server's cold start does."""

import json
import subprocess
import sys

import pytest

from tests.servers import server_environment

LOAD_WITH_SQLITE = (
    "import sqlite3\n"
    "sqlite3.sqlite_version_info, sqlite3.sqlite_version = {info!r}, {text!r}\n"
    "import federated_learning_project.settings_local as settings\n"
    "print(settings.DATABASES['default']['ENGINE'])\n"
)


def load(tmp_path, info, text, **env):
    return subprocess.run(
        [sys.executable, "-c", LOAD_WITH_SQLITE.format(info=info, text=text)],
        env=server_environment(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_sqlite_too_old_for_the_throttles_is_named_at_start(tmp_path):
    result = load(tmp_path, (3, 34, 1), "3.34.1")

    assert result.returncode != 0
    assert "SQLite 3.34.1 is too old for the embedded default, which needs 3.35 or later" in result.stderr
    assert "FMA_LOCAL_DATABASE_URL" in result.stderr


def test_sqlite_3_35_is_enough(tmp_path):
    result = load(tmp_path, (3, 35, 0), "3.35.0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_postgresql_needs_no_sqlite(tmp_path):
    result = load(tmp_path, (3, 7, 0), "3.7.0", FMA_LOCAL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/fma")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql"


PRINT_THROTTLE_RATES = (
    "import json\n"
    "import federated_learning_project.settings_local as settings\n"
    "print(json.dumps(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']))\n"
)


def throttle_rates(tmp_path, **env):
    return subprocess.run(
        [sys.executable, "-c", PRINT_THROTTLE_RATES],
        env=server_environment(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestLocalRegistrationRate:
    """``FMA_LOCAL_REGISTRATION_RATE``: the per-IP brakes on anonymous calls, lifted for simulations on one machine."""

    def test_unset_the_deployments_rates_apply(self, tmp_path):
        result = throttle_rates(tmp_path)

        assert result.returncode == 0, result.stderr
        rates = json.loads(result.stdout)
        assert (rates["anon"], rates["registration"]) == ("120/min", "30/min")

    @pytest.mark.parametrize(("given", "rate"), [("1000/min", "1000/min"), ("none", None)])
    def test_it_replaces_both_per_ip_rates_of_anonymous_callers(self, tmp_path, given, rate):
        result = throttle_rates(tmp_path, FMA_LOCAL_REGISTRATION_RATE=given)

        assert result.returncode == 0, result.stderr
        rates = json.loads(result.stdout)
        assert (rates["anon"], rates["registration"]) == (rate, rate)
        # The brakes on password guesses and failed credentials stay.
        assert (rates["login"], rates["credentials"]) == ("10/min", "30/min")

    def test_a_value_that_is_no_rate_stops_the_start_naming_it(self, tmp_path):
        result = throttle_rates(tmp_path, FMA_LOCAL_REGISTRATION_RATE="fast")

        assert result.returncode != 0
        assert 'FMA_LOCAL_REGISTRATION_RATE must be a rate such as "1000/min", or "none", not \'fast\'' in (
            result.stderr
        )
