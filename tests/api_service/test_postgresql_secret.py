"""The ``postgresql_secret`` database backend: a password rotated under a warm container is read again.

A PostgreSQL server of the test's own (``initdb``, password authentication over TCP, trust only on its
private socket) holds a role whose password the test changes, as RDS rotation does. The credentials come
from moto's Secrets Manager through the ``aws_secrets`` manager, cached as in a deployment.
"""

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler
from moto import mock_aws
from moto.secretsmanager.models import SecretsManagerBackend

from federated_learning_project.postgresql_secret.credentials import database_credentials
from secrets_managers import aws_secrets
from tests.api_service.secrets_managers.test_aws_secrets import extension  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

SECRET_ID = "fma/test/rotating-db"
ROLE = "fma_rotating"


def _postgres_binary(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """A throw-away PostgreSQL cluster that checks passwords on 127.0.0.1; ``psql(sql)`` runs as superuser."""
    initdb, pg_ctl, psql = (_postgres_binary(name) for name in ("initdb", "pg_ctl", "psql"))
    if not (initdb and pg_ctl and psql):
        pytest.skip("needs PostgreSQL's initdb, pg_ctl and psql to run a cluster with password authentication")
    # PostgreSQL refuses to run as root: as root, run it as the postgres user.
    as_owner = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root needs a postgres user and runuser to start a private cluster")
        as_owner = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's temporary folder: as root that one is private to root, out of the postgres user's reach.
    folder = Path(tempfile.mkdtemp(prefix="fma-pg-"))
    if as_owner:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run(
        [*as_owner, initdb, "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"], **run
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_owner, pg_ctl, "-D", data, "-l", folder / "log", "-w", "-o", options, "start"], **run)

    def superuser(statement):
        subprocess.run([psql, "-h", folder, "-p", str(port), "-U", "postgres", "-c", statement], **run)

    yield port, superuser
    subprocess.run([*as_owner, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def secretsmanager(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME", "FMA_SECRETS_CACHE_TTL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    reads = []
    read = SecretsManagerBackend.get_secret_value

    def counted(backend, secret_id, *args, **kwargs):
        reads.append(secret_id)
        return read(backend, secret_id, *args, **kwargs)

    monkeypatch.setattr(SecretsManagerBackend, "get_secret_value", counted)
    aws_secrets.clear_cache()
    with mock_aws():
        from fma_core.aws import aws_client

        yield aws_client("secretsmanager"), reads
    aws_secrets.clear_cache()


@pytest.fixture
def database(server, secretsmanager, django_db_blocker):
    """A connection made as ``settings_remote`` makes it: credentials read at cold start, then cached."""
    port, superuser = server
    manager, reads = secretsmanager
    password = secrets.token_urlsafe(16)
    superuser(f"DROP ROLE IF EXISTS {ROLE}")
    superuser(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
    manager.create_secret(Name=SECRET_ID, SecretString=json.dumps({"username": ROLE, "password": password}))
    user, password = database_credentials(SECRET_ID)
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "federated_learning_project.postgresql_secret",
                "CREDENTIALS_SECRET": SECRET_ID,
                "NAME": "postgres",
                "HOST": "127.0.0.1",
                "PORT": port,
                "USER": user,
                "PASSWORD": password,
                "OPTIONS": {"sslmode": "disable"},
            }
        }
    )
    connection = handler["default"]
    reads.clear()
    # Not the test database pytest-django guards: a server of this module's own.
    with django_db_blocker.unblock():
        yield connection
        connection.close()


def rotate(server, manager, *, secret_password, role_password):
    """RDS rotation: the role's password changes, and the secret is given ``secret_password``."""
    _, superuser = server
    superuser(f"ALTER ROLE {ROLE} PASSWORD '{role_password}'")
    manager.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"username": ROLE, "password": secret_password})
    )


def current_user(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_a_rotated_password_is_read_again_once_and_used(server, secretsmanager, database):
    manager, reads = secretsmanager
    assert current_user(database) == ROLE
    new_password = secrets.token_urlsafe(16)
    rotate(server, manager, secret_password=new_password, role_password=new_password)
    database.close()  # the connection a warm container kept is gone (CONN_MAX_AGE, or the server closed it)

    assert current_user(database) == ROLE
    assert reads == [SECRET_ID]
    assert database.settings_dict["PASSWORD"] == new_password
    # The new password is kept: the next connection needs no read.
    database.close()
    assert current_user(database) == ROLE
    assert reads == [SECRET_ID]


def test_with_the_extension_the_read_after_a_refusal_skips_its_stale_cache(
    server, secretsmanager, database, monkeypatch, request
):
    fake_extension = request.getfixturevalue("extension")
    # The Lambda extension layer serves secrets from its own cache (300 s by default): still the old password.
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # Secrets Manager itself is moto's, in this process
    manager, reads = secretsmanager
    fake_extension.secrets[SECRET_ID] = {"SecretString": json.dumps({"username": ROLE, "password": "before-rotation"})}
    new_password = secrets.token_urlsafe(16)
    rotate(server, manager, secret_password=new_password, role_password=new_password)
    database.close()

    assert current_user(database) == ROLE
    assert reads == [SECRET_ID]
    assert fake_extension.requests == []


def test_a_secret_that_does_not_match_fails_naming_it_without_the_password(server, secretsmanager, database):
    manager, reads = secretsmanager
    wrong, right = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    rotate(server, manager, secret_password=wrong, role_password=right)
    database.close()

    with pytest.raises(OperationalError) as raised:
        current_user(database)

    message = str(raised.value)
    assert message == (
        f"The database refused the password of user '{ROLE}' from secret '{SECRET_ID}' (FMA_DB_SECRET_PATH), read "
        "again just now: the secret does not hold the user's current password"
    )
    assert reads == [SECRET_ID]
    assert wrong not in message
    assert right not in message


def test_other_connection_failures_are_not_retried(server, secretsmanager, database):
    _, reads = secretsmanager
    database.settings_dict["NAME"] = "no_such_database"
    database.close()

    with pytest.raises(OperationalError, match='database "no_such_database" does not exist'):
        current_user(database)
    assert reads == []
