"""The whole journey through ``make run``'s server: three clients push, the server aggregates on its own.

The real ``api_service/local_server.py`` runs in its own process with the ``local`` aggregation trigger
and its own data folder, so it uses the embedded default database (SQLite) whatever
``FMA_TEST_DATABASE`` says. Everything goes over HTTP, as a developer and clients would do it.
"""

import base64
import json
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.servers import LOCAL_AGGREGATION, running_server

pytestmark = pytest.mark.integration

PASSWORD = "journey-admin-password"
INITIAL_MODEL = [[0.0, 0.0, 0.0], [0.0, 0.0]]
UPDATES = [
    [[1.0, 2.0, 3.0], [4.0, 5.0]],
    [[2.5, -1.0, 0.5], [0.25, 7.0]],
    [[0.1, 0.2, 0.3], [10.0, -3.0]],
]
NUM_EXAMPLES = [10, 30, 60]
# Aggregation runs in a thread of the server right after the response; it takes milliseconds.
AGGREGATE_TIMEOUT = 10.0
# How long an aggregate that must not be made is watched for (an aggregation takes milliseconds).
HOLD_BACK_SECONDS = 1.0
COMPLETE = 2
PENDING = 0


def _layer_mean(weights=None):
    return [np.average(np.array(layers), axis=0, weights=weights) for layers in zip(*UPDATES, strict=True)]


CASES = {
    "mean-of-all-clients": (
        {"aggregator": "avg_values_if_data", "requirement": "all_clients"},
        _layer_mean(),
    ),
    "fed-avg-weighted-by-num-examples": (
        {"aggregator": "fed_avg", "requirement": "all_clients"},
        _layer_mean(NUM_EXAMPLES),
    ),
    "mean-after-three-updates": (
        {"aggregator": "avg_values_if_data", "requirement": "require_x_updates", "requirement_args": [3]},
        _layer_mean(),
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(
        tmp_path_factory.mktemp("aggregation-journey"), admin_password=PASSWORD, env=LOCAL_AGGREGATION
    ) as running:
        yield running


def call(server, method, path, *, body=None, client=None, developer=False):
    """Status and decoded JSON of one request, as a client (its uuid), the developer (Basic) or anonymously."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if client is not None:
        headers["CLIENT-UUID"] = client
    if developer:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    status, _, raw = server.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    return status, json.loads(raw)


def ok(expected_status, answer):
    status, body = answer
    assert status == expected_status, body
    return body


def latest_aggregate(server, model_id, client):
    return ok(200, call(server, "GET", f"/api/v1/models/{model_id}/get_latest_aggregate/", client=client))


def wait_for_aggregate(server, model_id, client):
    deadline = time.monotonic() + AGGREGATE_TIMEOUT
    while not (aggregate := latest_aggregate(server, model_id, client)):
        assert time.monotonic() < deadline, f"no aggregate after {AGGREGATE_TIMEOUT} s; server log:\n{server.stderr()}"
        time.sleep(0.05)
    return aggregate


def developer_updates(server, model_id):
    updates = ok(200, call(server, "GET", f"/api/v1/model_updates/?federated_model={model_id}", developer=True))
    return sorted(updates, key=lambda update: update["id"])


@pytest.mark.parametrize(("model_fields", "expected"), CASES.values(), ids=CASES.keys())
def test_three_clients_push_and_the_server_aggregates(server, model_fields, expected):
    model = ok(
        201,
        call(
            server,
            "POST",
            "/api/v1/models/",
            developer=True,
            body={"name": "journey", "allow_aggregation": True, "initial_model": INITIAL_MODEL, **model_fields},
        ),
    )
    model_id = model["id"]
    clients = [ok(200, call(server, "POST", f"/api/v1/models/{model_id}/register_client/"))["uuid"] for _ in UPDATES]
    for client in clients:
        latest = ok(200, call(server, "GET", f"/api/v1/models/{model_id}/get_latest_model/", client=client))
        assert latest == {"values": INITIAL_MODEL, "aggregate": None}

    def push(client, weights, num_examples):
        body = {"federated_model": model_id, "data": weights, "base_aggregate": None, "num_examples": num_examples}
        return ok(201, call(server, "POST", "/api/v1/model_updates/", client=client, body=body))

    pushes = list(zip(clients, UPDATES, NUM_EXAMPLES, strict=True))
    for client, weights, num_examples in pushes[:2]:
        push(client, weights, num_examples)
    # Two of three: the requirement holds the aggregation back.
    deadline = time.monotonic() + HOLD_BACK_SECONDS
    while time.monotonic() < deadline:
        assert latest_aggregate(server, model_id, clients[0]) == {}
        time.sleep(0.05)
    assert [update["status"] for update in developer_updates(server, model_id)] == [PENDING, PENDING]

    started = time.monotonic()
    push(*pushes[2])
    aggregate = wait_for_aggregate(server, model_id, clients[2])

    assert time.monotonic() - started < AGGREGATE_TIMEOUT
    assert aggregate["federated_model"] == model_id
    assert aggregate["parent"] is None
    assert len(aggregate["result"]) == len(expected)
    for layer, expected_layer in zip(aggregate["result"], expected, strict=True):
        np.testing.assert_allclose(layer, expected_layer, rtol=1e-12, atol=1e-12)
    for client in clients:
        latest = ok(200, call(server, "GET", f"/api/v1/models/{model_id}/get_latest_model/", client=client))
        assert latest == {"values": aggregate["result"], "aggregate": aggregate["id"]}

    updates = developer_updates(server, model_id)
    # List rows carry the URL that serves each update's data (docs/api.md), not the weights themselves.
    data = [ok(200, call(server, "GET", urlsplit(u["data"]).path, developer=True)) for u in updates]
    assert [(u["client"], d, u["num_examples"]) for u, d in zip(updates, data, strict=True)] == [
        tuple(p) for p in pushes
    ]
    assert [(u["status"], u["applied_aggregate"]) for u in updates] == [(COMPLETE, aggregate["id"])] * len(UPDATES)

    for client, accuracy in zip(clients, [0.5, 0.75, 0.9], strict=True):
        score = {"aggregate": aggregate["id"], "validation_results": {"accuracy": accuracy}}
        stored = ok(201, call(server, "POST", "/api/v1/client_aggregate_scores/", client=client, body=score))
        assert (stored["aggregate"], stored["client"]) == (aggregate["id"], client)
    scores = ok(
        200, call(server, "GET", f"/api/v1/client_aggregate_scores/?aggregate={aggregate['id']}", developer=True)
    )
    assert sorted((s["client"], s["validation_results"]["accuracy"]) for s in scores) == sorted(
        zip(clients, [0.5, 0.75, 0.9], strict=True)
    )
    assert "Traceback" not in server.stderr()
