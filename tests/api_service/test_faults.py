"""Faults under the real Lambda handler: what a caller sees when a dependency fails mid-request."""

import json

import psycopg2
import pytest
from django.db.backends.signals import connection_created
from rest_framework.authtoken.models import Token

import service_initialization
from tests.events import make_context, make_v2_event, response_body

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]


def _models(token):
    event = make_v2_event(path="/api/v1/models/", headers={"Authorization": f"Token {token}"})
    response = service_initialization.handler(event, make_context())
    return response["statusCode"], json.loads(response_body(response))


def _drop_the_next_connection():
    """Once the request has opened its connection, drop its server side, as a failover or a proxy's cut does."""

    def terminate(sender, connection, **kwargs):
        connection_created.disconnect(terminate)
        pid = connection.connection.info.backend_pid
        with psycopg2.connect(**connection.get_connection_params()) as killer, killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        killer.close()

    connection_created.connect(terminate, weak=False)


def test_a_dropped_database_connection_is_a_json_503_and_the_next_request_succeeds(django_user_model):
    # Prepare
    developer = django_user_model.objects.create_user(username="dev", password="unused")
    token = Token.objects.create(user=developer).key
    _drop_the_next_connection()

    # Execute
    dropped = _models(token)
    after = _models(token)

    # Assert
    assert dropped == (503, {"detail": "The database is unavailable; try again."})
    assert after == (200, [])
