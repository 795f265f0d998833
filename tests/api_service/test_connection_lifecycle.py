"""Events that are not HTTP requests (aggregations, deploy-time operations) open, health-check and close their
database connections as requests do: a connection PostgreSQL dropped while the container was warm (an RDS
Proxy's idle timeout, a failover) is replaced, not used again and again."""

from __future__ import annotations

import json

import psycopg2
import pytest
from django.db import connection

import aggregator_initialization
import service_initialization
from fma_django_connectors.models import ModelAggregate
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def persistent_connections(monkeypatch):
    """The deployed connection settings (settings_remote): kept across invocations, checked before reuse."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    yield
    connection.close()


def backend_pid() -> int | None:
    """The server process of the default connection, None when it is closed."""
    return None if connection.connection is None else connection.connection.info.backend_pid


def terminate(pid: int) -> None:
    """What a failover or the proxy's idle timeout does to a connection: the server ends it."""
    settings = connection.settings_dict
    admin = psycopg2.connect(
        dbname="postgres", host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        password=settings["PASSWORD"],
    )  # fmt: skip
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone() == (True,)
    finally:
        admin.close()


def aggregate(model) -> int | None:
    return aggregator_initialization.handler({"detail": {"model_id": model.pk}}, None)


def test_a_warm_aggregator_survives_a_dropped_connection(persistent_connections):
    first, second = make_model(), make_model()
    make_update(first, [1.0])
    make_update(second, [2.0])
    assert aggregate(first) is not None
    pid = backend_pid()
    assert pid is not None, "CONN_MAX_AGE keeps the connection across invocations"

    terminate(pid)

    aggregate_id = aggregate(second)
    assert result_of(ModelAggregate.objects.get(pk=aggregate_id, federated_model=second)) == [2.0]
    assert backend_pid() != pid


def test_the_connection_is_kept_across_invocations_while_it_answers(persistent_connections):
    model = make_model()
    aggregate(model)
    pid = backend_pid()

    aggregate(model)

    assert backend_pid() == pid


def test_without_conn_max_age_each_invocation_closes_its_connection(persistent_connections, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    model = make_model()

    aggregate(model)

    assert backend_pid() is None


def test_a_failed_event_leaves_no_broken_connection_behind(persistent_connections):
    model = make_model()
    aggregate(model)
    terminate(backend_pid())
    # The operation finds the connection dead only once it runs: the health check at the start of the next
    # event must not be the only thing standing between a broken connection and every later event.
    connection.health_check_enabled = False

    with pytest.raises(Exception, match=r"terminat|closed"):
        aggregate(model)

    assert aggregate(model) is None  # nothing to aggregate, and no error


def test_deploy_time_operations_on_the_api_survive_a_dropped_connection(persistent_connections, monkeypatch, settings):
    settings.FMA_ADMIN_SECRET_ID = "FMA_TEST_ADMIN_SECRET"
    monkeypatch.setenv("FMA_TEST_ADMIN_SECRET", json.dumps({"username": "root", "password": "long password 4711"}))
    service_initialization.handler({"detail": "update_metadata_db"}, None)
    terminate(backend_pid())

    answer = service_initialization.handler({"detail": "bootstrap_admin"}, None)

    assert answer["statusCode"] == 201
