"""Weights past Lambda's limits through ``make run``'s real server: upload, complete, aggregate, download.

The developer uploads an initial model and two clients upload updates, each as safetensors larger than
a Lambda request may be; the server aggregates on its own; a client downloads the aggregate in binary
(a 303 to the server's signed URL, the answer being too large to return inline) and in JSON (a 413).
Everything goes over HTTP with a plain client, as a PyTorch or NumPy user's code would.
"""

import base64
import hashlib
import http.client
import json
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import safetensors.numpy

from tests.servers import LOCAL_AGGREGATION, running_server

pytestmark = pytest.mark.integration

PASSWORD = "upload-journey-admin-password"
# 1.2M float32 parameters: 4.8 MB of safetensors, more than a response may carry inline once base64-encoded.
SHAPES = {"encoder.weight": (1000, 1100), "encoder.bias": (1000,), "head.weight": (100, 990)}
AGGREGATE_TIMEOUT = 60.0


def _tensors(seed):
    generator = np.random.default_rng(seed)
    return {name: generator.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def _send(method, url, *, body=None, headers=None):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


class Caller:
    """A developer (Basic auth) or a client (``CLIENT-UUID``) of the server."""

    def __init__(self, server, *, basic=None, client_uuid=None):
        self.server = server
        self.headers = {}
        if basic is not None:
            self.headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
        if client_uuid is not None:
            self.headers["CLIENT-UUID"] = client_uuid

    def call(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        return _send(method, self.server.url.rstrip("/") + path, body=data, headers=headers)

    def json(self, method, path, body=None, *, expect):
        status, _, answer = self.call(method, path, body)
        assert status == expect, answer
        return json.loads(answer)

    def upload(self, model_id, data, **fields):
        """The whole upload flow; returns the completion's status and body."""
        target = self.json(
            "POST",
            "/api/v1/uploads/",
            {
                "federated_model": model_id,
                "format": "safetensors",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                **fields,
            },
            expect=201,
        )
        assert target["method"] == "PUT"
        status, _, answer = _send("PUT", target["upload_url"], body=data, headers=target["headers"])
        assert status == 200, answer
        status, _, answer = self.call("POST", f"/api/v1/uploads/{target['id']}/complete/")
        return target, status, json.loads(answer)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(
        tmp_path_factory.mktemp("upload-journey"), admin_password=PASSWORD, env=LOCAL_AGGREGATION
    ) as running:
        yield running


def test_large_binary_weights_in_and_out(server):
    developer = Caller(server, basic=("admin", PASSWORD))
    model = developer.json(
        "POST",
        "/api/v1/models/",
        {"name": "large", "aggregator": "avg_values_if_data", "requirement": "all_clients", "allow_aggregation": True},
        expect=201,
    )
    initial = safetensors.numpy.save(_tensors(0))
    _, status, artifact = developer.upload(model["id"], initial, purpose="initial_model")
    assert status == 201, artifact
    assert artifact["version"] == "1.0.0"

    clients = []
    for _ in range(2):
        uuid = developer.json("POST", f"/api/v1/models/{model['id']}/register_client/", expect=200)["uuid"]
        clients.append(Caller(server, client_uuid=uuid))
    updates = [_tensors(seed) for seed in (1, 2)]
    for client, tensors in zip(clients, updates, strict=True):
        target, status, update = client.upload(model["id"], safetensors.numpy.save(tensors))
        assert status == 201, update
        assert update["status"] == 0
        # Completing again (a retry after a timeout) answers the same update.
        status, _, again = client.call("POST", f"/api/v1/uploads/{target['id']}/complete/")
        assert (status, json.loads(again)["id"]) == (200, update["id"])

    deadline = time.monotonic() + AGGREGATE_TIMEOUT
    while True:
        status, headers, answer = clients[0].call(
            "GET", f"/api/v1/models/{model['id']}/get_latest_aggregate/?format=safetensors"
        )
        if status != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 303, answer
    aggregate_id = headers["FMA-Aggregate-Id"]
    status, headers, body = _send("GET", headers["Location"])
    assert status == 200
    assert headers["Content-Disposition"] == f'attachment; filename="aggregate-{aggregate_id}.safetensors"'
    aggregate = safetensors.numpy.load(body)
    for name in SHAPES:
        assert aggregate[name].dtype == np.float32
        np.testing.assert_allclose(aggregate[name], (updates[0][name] + updates[1][name]) / 2, rtol=1e-6)

    # The contract's JSON cannot carry 1.2M numbers in a Lambda response: a 413 naming the binary formats.
    status, _, answer = clients[1].call("GET", f"/api/v1/models/{model['id']}/get_latest_model/")
    assert status == 413
    assert "?format=safetensors" in json.loads(answer)["detail"]


def test_a_body_of_another_length_is_refused_and_completing_waits_for_the_bytes(server):
    developer = Caller(server, basic=("admin", PASSWORD))
    model = developer.json(
        "POST", "/api/v1/models/", {"name": "refusals", "aggregator": "avg_values_if_data"}, expect=201
    )
    uuid = developer.json("POST", f"/api/v1/models/{model['id']}/register_client/", expect=200)["uuid"]
    client = Caller(server, client_uuid=uuid)
    data = safetensors.numpy.save({"w": np.ones(1000, np.float32)})
    target = client.json(
        "POST",
        "/api/v1/uploads/",
        {"federated_model": model["id"], "format": "safetensors", "size": len(data)},
        expect=201,
    )

    status, headers, answer = _send(
        "PUT", target["upload_url"], body=data + b"extra", headers={"Content-Length": str(len(data) + 5)}
    )
    assert (status, headers["Content-Type"]) == (400, "application/json")
    assert json.loads(answer) == {
        "detail": f"The body is {len(data) + 5} bytes; this upload URL takes exactly {len(data)} bytes."
    }
    status, _, answer = client.call("POST", f"/api/v1/uploads/{target['id']}/complete/")
    assert status == 409, answer
    # The refused body was not kept.
    assert list((server.data_dir / "media" / "uploads").glob("*")) == []

    status, _, _ = _send("PUT", target["upload_url"], body=data, headers=target["headers"])
    assert status == 200
    status, _, answer = client.call("POST", f"/api/v1/uploads/{target['id']}/complete/")
    assert status == 201, answer


def test_an_upload_url_takes_no_bytes_once_its_upload_is_completed_or_gone(server):
    developer = Caller(server, basic=("admin", PASSWORD))
    model = developer.json("POST", "/api/v1/models/", {"name": "once", "aggregator": "avg_values_if_data"}, expect=201)
    uuid = developer.json("POST", f"/api/v1/models/{model['id']}/register_client/", expect=200)["uuid"]
    client = Caller(server, client_uuid=uuid)
    data = safetensors.numpy.save({"w": np.ones(10, np.float32)})
    target, status, update = client.upload(model["id"], data)
    assert status == 201, update

    status, headers, answer = _send("PUT", target["upload_url"], body=data, headers=target["headers"])
    assert (status, headers["Content-Type"]) == (409, "application/json")
    assert json.loads(answer) == {
        "detail": f"Upload {target['id']} is completed: its URL takes no more bytes; make a new upload."
    }
    # Nothing was written where the bytes of the completed upload were.
    assert list((server.data_dir / "media" / "uploads").glob("*")) == []

    # An upload refused at completion (bytes that are not weights) is removed; its URL goes with it.
    bad = b"x" * len(data)
    target, status, answer = client.upload(model["id"], bad)
    assert status == 400, answer
    status, _, answer = _send("PUT", target["upload_url"], body=bad, headers=target["headers"])
    assert status == 410
    assert json.loads(answer) == {
        "detail": f"Upload {target['id']} no longer exists (refused, expired or its model deleted): "
        "its URL takes no more bytes; make a new upload."
    }
    assert list((server.data_dir / "media" / "uploads").glob("*")) == []
