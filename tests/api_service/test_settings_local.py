"""settings_local, the embedded default: loaded in a fresh interpreter, as the local server's cold start does."""

import subprocess
import sys

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
