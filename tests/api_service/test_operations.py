"""Deploy-time events: the first admin user from a secret, migrations and the orphan results sweep on the aggregator."""

import json
import os
import time

import pytest
from django.contrib.auth import get_user_model

import aggregator_initialization
import service_initialization
from fma_core.exceptions import ConfigurationError
from secrets_managers import SecretUnavailableError
from tests.fma_django_connectors.workflow_support import make_aggregate, make_model
from tests.storage_faults import stored_files

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
        "body": '{"data": "deleted 1 result file(s) no aggregate records"}',
    }
    assert stored_files(tmp_path / "aggregates") == [recorded.result.name.removeprefix("aggregates/")]
