"""Deploy-time events: the first admin user from a secret, migrations and the orphan results sweep on the aggregator."""

import base64
import hashlib
import hmac
import json
import os
import time

import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

import aggregator_initialization
import service_initialization
from fma_core.exceptions import ConfigurationError
from secrets_managers import SecretUnavailableError
from tests.fma_django_connectors.workflow_support import make_aggregate, make_model
from tests.storage_faults import stored_files

# The handler closes connections after each event, as Django after a request; not the test's own.
pytestmark = pytest.mark.usefixtures("keep_test_connection")

SECRET_ID = "FMA_TEST_ADMIN_SECRET"
PASSWORD = "first admin's long password 4711"
BOOTSTRAP = {"detail": "bootstrap_admin"}


def bootstrap():
    return service_initialization.handler(BOOTSTRAP, None)


@pytest.fixture
def admin_secret(monkeypatch, settings):
    """The secret as a deployment names it (FMA_ADMIN_SECRET_ID); the aws_secrets manager reads a variable named like
    it first."""
    settings.API_SERVICE_SETTINGS = {**settings.API_SERVICE_SETTINGS, "secrets_manager": "aws_secrets"}
    settings.FMA_ADMIN_SECRET_ID = SECRET_ID

    def store(value):
        monkeypatch.setenv(SECRET_ID, value if isinstance(value, str) else json.dumps(value))

    store({"username": "root", "password": PASSWORD})
    return store


@pytest.mark.django_db
class TestBootstrapAdmin:
    def test_creates_a_superuser_who_can_sign_in_with_the_secret(self, admin_secret):
        answer = bootstrap()

        assert answer["statusCode"] == 201
        assert json.loads(answer["body"]) == {"data": "admin user 'root' created"}
        user = get_user_model().objects.get(username="root")
        assert user.is_superuser
        assert user.is_staff
        assert user.is_active
        assert user.check_password(PASSWORD)

    def test_a_second_run_changes_nothing(self, admin_secret):
        bootstrap()
        user = get_user_model().objects.get(username="root")
        user.set_password("changed in the admin since")
        user.save()

        answer = bootstrap()

        assert answer["statusCode"] == 200
        assert json.loads(answer["body"]) == {"data": "an admin user exists; nothing changed"}
        assert get_user_model().objects.get(username="root").check_password("changed in the admin since")

    def test_another_existing_superuser_is_left_alone(self, admin_secret, django_user_model):
        django_user_model.objects.create_superuser("ops", password="x" * 20)

        assert bootstrap()["statusCode"] == 200
        assert list(django_user_model.objects.values_list("username", flat=True)) == ["ops"]

    def test_the_password_is_in_no_answer_and_no_log(self, admin_secret, caplog):
        caplog.set_level("DEBUG")

        answer = bootstrap()

        assert PASSWORD not in json.dumps(answer)
        assert "root" in caplog.text
        assert PASSWORD not in caplog.text

    def test_without_the_variable_the_error_names_it(self, admin_secret, settings):
        settings.FMA_ADMIN_SECRET_ID = ""

        with pytest.raises(ConfigurationError, match="needs the environment variable FMA_ADMIN_SECRET_ID"):
            bootstrap()
        assert not get_user_model().objects.exists()

    def test_a_missing_secret_is_named(self, admin_secret, monkeypatch, settings):
        settings.API_SERVICE_SETTINGS = {**settings.API_SERVICE_SETTINGS, "secrets_manager": "env"}
        monkeypatch.delenv(SECRET_ID)

        with pytest.raises(SecretUnavailableError, match=f"Secret '{SECRET_ID}' is not set"):
            bootstrap()
        assert not get_user_model().objects.exists()

    @pytest.mark.parametrize(
        "value",
        [
            {"username": "root"},
            {"username": "", "password": PASSWORD},
            {"username": "root", "password": ""},
            {"username": "root", "password": 4711},
            ["root", PASSWORD],
            f"root:{PASSWORD}",
        ],
        ids=["no-password", "empty-username", "empty-password", "number", "list", "text"],
    )
    def test_an_invalid_secret_is_refused_without_its_value(self, admin_secret, value):
        admin_secret(value)

        with pytest.raises(ConfigurationError) as error:
            bootstrap()

        message = str(error.value)
        assert message == (
            f"Secret '{SECRET_ID}' (FMA_ADMIN_SECRET_ID) must be JSON with non-empty "
            '"username" and "password" strings'
        )
        assert PASSWORD not in message
        assert not get_user_model().objects.exists()

    @pytest.mark.parametrize("event", [{"detail": "bootstrap_admin "}, {"detail": {"request": "bootstrap_admin"}}])
    def test_only_the_exact_event_creates_an_admin(self, admin_secret, event):
        with pytest.raises(ValueError, match="Unsupported event for the API service"):
            service_initialization.handler(event, None)
        assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_the_aggregator_migrates_the_database():
    answer = aggregator_initialization.handler({"detail": "update_metadata_db"}, None)

    assert answer == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"data": "database updated successfully"}',
    }


@pytest.mark.django_db
def test_the_aggregator_deletes_the_results_no_aggregate_records_once_older_than_the_lease(settings, tmp_path):
    # Prepare: a recorded result, and an unrecorded one under a uuid name (as before results were named after
    # their claims) written an hour ago.
    settings.MEDIA_ROOT = tmp_path
    model = make_model()
    recorded = make_aggregate(model, [1.0])
    unrecorded = make_aggregate(model, [2.0])
    orphan = unrecorded.result.name
    unrecorded.delete()
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / orphan, (an_hour_ago, an_hour_ago))

    # Execute
    answer = aggregator_initialization.handler({"detail": "delete_orphan_results"}, None)

    # Assert
    assert answer == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"data": "deleted 1 result file(s) no aggregate records and 0 update file(s) no update records"}',
    }
    assert stored_files(tmp_path / "aggregates") == [recorded.result.name.removeprefix("aggregates/")]


# --- the application's least-privilege database role ---------------------------------------------------------

APP_ROLE = "fma_app_operations_test"
OWNER_SECRET, APP_SECRET = "FMA_TEST_OWNER_DB_SECRET", "FMA_TEST_APP_DB_SECRET"


def scram_matches(verifier, password):
    """Whether a PostgreSQL SCRAM-SHA-256 verifier (``pg_authid.rolpassword``) was made from ``password``.

    RFC 5802/7677 by hand (a few lines of hashlib): the local server trusts every connection, so logging in cannot
    tell whether the role's password is the secret's.
    """
    method, rest = verifier.split("$", 1)
    parameters, keys = rest.split("$")
    iterations, salt = parameters.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


@pytest.fixture
def application_role(settings, monkeypatch):
    """Secrets of the owner (the test's own PostgreSQL user) and of an application role; the role dropped after."""
    owner = connection.settings_dict
    monkeypatch.setenv(OWNER_SECRET, json.dumps({"username": owner["USER"], "password": owner["PASSWORD"] or ""}))
    settings.FMA_DATABASE_OWNER_SECRET, settings.FMA_DATABASE_APP_SECRET = OWNER_SECRET, APP_SECRET

    def secret(password):
        monkeypatch.setenv(APP_SECRET, json.dumps({"username": APP_ROLE, "password": password}))

    yield secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        if cursor.fetchone():
            cursor.execute(f"DROP OWNED BY {APP_ROLE}")
            cursor.execute(f"DROP ROLE {APP_ROLE}")


def connect_as(role):
    settings = connection.settings_dict
    return psycopg2.connect(dbname=settings["NAME"], host=settings["HOST"], port=settings["PORT"], user=role)


def role_password(role):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
        return cursor.fetchone()[0]


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
class TestApplicationRole:
    def test_the_migration_creates_a_role_that_writes_rows_and_cannot_change_the_schema(self, application_role):
        application_role("first password 0815")

        answer = aggregator_initialization.handler({"detail": "update_metadata_db"}, None)

        assert json.loads(answer["body"]) == {"data": "database updated successfully"}
        assert scram_matches(role_password(APP_ROLE), "first password 0815")
        app = connect_as(APP_ROLE)
        try:
            with app, app.cursor() as cursor:
                cursor.execute("SELECT current_user")
                assert cursor.fetchone() == (APP_ROLE,)
                cursor.execute("INSERT INTO auth_group (name) VALUES ('written by the application') RETURNING id")
                cursor.execute("UPDATE auth_group SET name = 'changed' WHERE id = %s", cursor.fetchone())
            for ddl in ("CREATE TABLE app_made (id int)", "ALTER TABLE auth_group ADD COLUMN extra int"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege), app, app.cursor() as cursor:
                    cursor.execute(ddl)
        finally:
            app.close()

    def test_a_new_password_in_the_secret_is_the_roles_after_the_next_migration(self, application_role):
        application_role("first password 0815")
        aggregator_initialization.handler({"detail": "update_metadata_db"}, None)
        application_role("rotated password 4711")

        aggregator_initialization.handler({"detail": "update_metadata_db"}, None)

        assert scram_matches(role_password(APP_ROLE), "rotated password 4711")
        assert not scram_matches(role_password(APP_ROLE), "first password 0815")

    def test_the_owner_is_never_made_the_application_role(self, application_role, monkeypatch):
        monkeypatch.setenv(APP_SECRET, os.environ[OWNER_SECRET])

        with pytest.raises(ConfigurationError, match="name the same database user"):
            aggregator_initialization.handler({"detail": "update_metadata_db"}, None)
