"""The contract's client journey, end to end through ``service_initialization.handler``.

Every request is a real API Gateway REST (v1), HTTP API (v2) or ALB event, so the journey exercises
the Lambda entry, apig-wsgi and the whole Django stack as deployed. Aggregation is not part of the
request path: the aggregate a client evaluates is stored here as an aggregation would store it.
"""

import base64
import json
import uuid

import pytest
from rest_framework import status

import service_initialization
from fma_core.serialization import parse_weights
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from fma_django_connectors.storage.weights_storage import weights_save
from tests.events import make_alb_event, make_context, make_v1_event, make_v2_event, response_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_test_connection")]

BUILDERS = {"v1": make_v1_event, "v2": make_v2_event, "alb": make_alb_event}
INITIAL_WEIGHTS = [[1.0, 2.0, 3.0], [4.0, 5.0]]
TRAINED_WEIGHTS = [[1.5, 2.5, 3.5], [4.5, 5.5]]
AGGREGATED_WEIGHTS = [[1.25, 2.25, 3.25], [4.25, 5.25]]
PASSWORD = "journey-password"


class Gateway:
    """Sends requests to the Lambda entry as one kind of AWS event and decodes the JSON answers."""

    def __init__(self, kind):
        self.build = BUILDERS[kind]

    def call(self, method, path, *, body=None, client_uuid=None, basic=None, query=None):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if client_uuid is not None:
            headers["CLIENT-UUID"] = client_uuid
        if basic is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
        event = self.build(
            method=method,
            path=path,
            headers=headers,
            query=query,
            body=None if body is None else json.dumps(body),
        )
        response = service_initialization.handler(event, make_context())
        return response["statusCode"], json.loads(response_body(response))


@pytest.fixture(params=list(BUILDERS))
def gateway(request):
    return Gateway(request.param)


@pytest.fixture
def developer(django_user_model):
    user = django_user_model.objects.create_user("dev", password=PASSWORD)
    return user, ("dev", PASSWORD)


def _create_model(gateway, credentials, name="journey", **fields):
    return gateway.call(
        "POST", "/api/v1/models/", basic=credentials, body={"name": name, "aggregator": "avg_values_if_data", **fields}
    )


@pytest.fixture
def model_id(gateway, developer):
    _, credentials = developer
    code, body = _create_model(gateway, credentials, initial_model=INITIAL_WEIGHTS)
    assert code == status.HTTP_201_CREATED, body
    return body["id"]


def _store_aggregate(model_id, weights, parent=None):
    aggregate = ModelAggregate(federated_model_id=model_id, parent=parent)
    weights_save(field=aggregate.result, weights=parse_weights(weights))
    aggregate.save()
    return aggregate


def test_developer_creates_the_model(gateway, developer):
    user, credentials = developer

    code, body = _create_model(gateway, credentials, initial_model=INITIAL_WEIGHTS)

    assert code == status.HTTP_201_CREATED
    assert body["name"] == "journey"
    assert body["developer"] == user.id
    assert body["clients"] == []
    assert body["aggregator"] == "avg_values_if_data"
    assert body["allow_aggregation"] is False
    assert body["current_artifact"] is not None
    assert "initial_model" not in body


def test_client_journey(gateway, developer, model_id):
    _, credentials = developer

    # 1. Register: a new client gets a uuid; registering again with it is idempotent.
    code, registered = gateway.call("POST", f"/api/v1/models/{model_id}/register_client/")
    assert code == status.HTTP_200_OK
    client_uuid = registered["uuid"]
    assert str(uuid.UUID(client_uuid)) == client_uuid
    assert gateway.call("POST", f"/api/v1/models/{model_id}/register_client/", client_uuid=client_uuid) == (
        status.HTTP_200_OK,
        {"uuid": client_uuid},
    )

    # 2. Latest model: the initial weights, no aggregate yet.
    assert gateway.call("GET", f"/api/v1/models/{model_id}/get_latest_model/", client_uuid=client_uuid) == (
        status.HTTP_200_OK,
        {"values": INITIAL_WEIGHTS, "aggregate": None},
    )

    # 3. Train and push an update.
    code, update = gateway.call(
        "POST",
        "/api/v1/model_updates/",
        client_uuid=client_uuid,
        body={"federated_model": model_id, "data": TRAINED_WEIGHTS, "base_aggregate": None},
    )
    assert code == status.HTTP_201_CREATED, update
    assert update["client"] == client_uuid
    assert update["federated_model"] == model_id
    assert update["status"] == ModelUpdate.Status.PENDING
    assert update["base_aggregate"] is None
    assert "applied_aggregate" not in update
    assert ModelUpdate.objects.get(pk=update["id"]).status == ModelUpdate.Status.PENDING

    # 4. Poll for an aggregate: none until an aggregation stores one.
    latest_aggregate = f"/api/v1/models/{model_id}/get_latest_aggregate/"
    assert gateway.call("GET", latest_aggregate, client_uuid=client_uuid) == (status.HTTP_200_OK, {})
    aggregate = _store_aggregate(model_id, AGGREGATED_WEIGHTS)
    code, newest = gateway.call("GET", latest_aggregate, client_uuid=client_uuid)
    assert code == status.HTTP_200_OK
    assert {key: newest[key] for key in ("id", "federated_model", "parent", "validation_score")} == {
        "id": aggregate.id,
        "federated_model": model_id,
        "parent": None,
        "validation_score": None,
    }
    assert {"result", "created_on"} <= newest.keys()
    assert gateway.call("GET", f"/api/v1/models/{model_id}/get_latest_model/", client_uuid=client_uuid) == (
        status.HTTP_200_OK,
        {"values": AGGREGATED_WEIGHTS, "aggregate": aggregate.id},
    )

    # 5. Evaluate it and send the score; a second score for the same aggregate is refused.
    score = {"aggregate": aggregate.id, "validation_results": {"accuracy": 0.91, "loss": 0.2}}
    code, created = gateway.call("POST", "/api/v1/client_aggregate_scores/", client_uuid=client_uuid, body=score)
    assert code == status.HTTP_201_CREATED, created
    assert created["aggregate"] == aggregate.id
    assert created["client"] == client_uuid
    assert created["validation_results"] == {"accuracy": 0.91, "loss": 0.2}
    code, duplicate = gateway.call("POST", "/api/v1/client_aggregate_scores/", client_uuid=client_uuid, body=score)
    assert code == status.HTTP_400_BAD_REQUEST, duplicate

    # The developer sees the update of its model, filtered by a query string.
    code, updates = gateway.call(
        "GET", "/api/v1/model_updates/", basic=credentials, query={"federated_model": str(model_id)}
    )
    assert code == status.HTTP_200_OK
    assert [(item["id"], item["client"], item["status"]) for item in updates] == [
        (update["id"], client_uuid, ModelUpdate.Status.PENDING)
    ]


class TestErrorBodies:
    def test_malformed_client_uuid(self, gateway, model_id):
        code, body = gateway.call("GET", f"/api/v1/models/{model_id}/get_latest_model/", client_uuid="not-a-uuid")

        assert code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
        assert body == {"detail": '"not-a-uuid" is not a valid UUID.'}

    def test_unknown_client_uuid(self, gateway, model_id):
        unknown = str(uuid.uuid4())

        code, body = gateway.call("GET", f"/api/v1/models/{model_id}/get_latest_model/", client_uuid=unknown)

        assert code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
        assert body == {"detail": "Invalid UUID"}

    def test_unknown_client_uuid_cannot_push(self, gateway, model_id):
        code, body = gateway.call(
            "POST",
            "/api/v1/model_updates/",
            client_uuid=str(uuid.uuid4()),
            body={"federated_model": model_id, "data": TRAINED_WEIGHTS, "base_aggregate": None},
        )

        assert code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
        assert body == {"detail": "Invalid UUID"}
        assert not ModelUpdate.objects.exists()

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/v1/models/"),
            ("GET", "/api/v1/model_updates/"),
            ("GET", "/api/v1/models/{id}/get_latest_model/"),
            ("POST", "/api/v1/client_aggregate_scores/"),
        ],
    )
    def test_no_credentials(self, gateway, model_id, method, path):
        code, body = gateway.call(method, path.format(id=model_id), body={} if method == "POST" else None)

        assert code == status.HTTP_401_UNAUTHORIZED
        assert body == {"detail": "Authentication credentials were not provided."}

    def test_client_of_another_model_is_forbidden(self, gateway, developer, model_id):
        _, credentials = developer
        other = _create_model(gateway, credentials, name="other")[1]["id"]
        client_uuid = gateway.call("POST", f"/api/v1/models/{other}/register_client/")[1]["uuid"]

        code, body = gateway.call("GET", f"/api/v1/models/{model_id}/get_latest_model/", client_uuid=client_uuid)

        assert code == status.HTTP_403_FORBIDDEN
        assert body == {"detail": "You do not have permission to perform this action."}
