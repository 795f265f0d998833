"""Liveness after a crash: ``make run``'s server killed (SIGKILL) in the middle of an aggregation.

The real server runs in its own process on the embedded default (SQLite). Its aggregation is made slow by
its size alone: many layers under a small memory budget give one pass over the updates per layer, and the
claim renews itself between them (the heartbeat). The server is killed while the updates are claimed, then
started again on the same data; with no further request, every accepted update must end in exactly one
aggregate within the lease plus a sweep.
"""

import base64
import json
import sqlite3
import time

import numpy as np
import pytest

from tests.servers import RunningServer

pytestmark = pytest.mark.integration

PASSWORD = "crash-admin-password"
UPDATE_COUNT = 8
LAYERS = 1500
LAYER_SIZE = 100
LEASE_SECONDS = 6
SWEEP_SECONDS = 1
# fed_median holds 8 * (N + 4) bytes a parameter: a budget of one layer makes one pass over the updates a layer.
# Layers alternate between two sizes: equal ones would make one (LAYERS, LAYER_SIZE) tensor of the JSON lists.
BUDGET = 8 * (UPDATE_COUNT + 4) * (LAYER_SIZE + 1)
ENV = {
    "FMA_AGGREGATION_TRIGGER": "local",
    "FMA_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
    "FMA_LOCAL_SWEEP_SECONDS": str(SWEEP_SECONDS),
    "FMA_MEMORY_BUDGET_BYTES": str(BUDGET),
}
RUNNING, COMPLETE = 1, 2
# Bounds of the waits (not timings under test): the claim must be seen within the aggregation's first seconds,
# and recovery takes the lease, a sweep and one aggregation (a few seconds) on an idle machine.
CLAIM_WAIT_SECONDS = 60
RECOVERY_WAIT_SECONDS = 120


def _call(server, method, path, body=None, *, client=None):
    headers = {"Content-Type": "application/json"}
    if client is None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    else:
        headers["CLIENT-UUID"] = client
    status, _, payload = server.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    return status, json.loads(payload or b"null")


def _update_rows(data_dir):
    with sqlite3.connect(data_dir / "db.sqlite3", timeout=30) as connection:
        return connection.execute(
            "select id, status, applied_aggregate_id from fma_django_connectors_modelupdate order by id"
        ).fetchall()


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_an_aggregation_killed_midway_is_finished_by_the_restarted_server_with_no_new_request(tmp_path):
    # Prepare: a model that aggregates once UPDATE_COUNT updates are in, and its updates, all but the last.
    data_dir = tmp_path / "data"
    first = RunningServer(data_dir, admin_password=PASSWORD, env=ENV).wait_ready()
    status, model = _call(
        first,
        "POST",
        "/api/v1/models/",
        {
            "name": "crash",
            "aggregator": "fed_median",
            "requirement": "require_x_updates",
            "requirement_args": [UPDATE_COUNT],
            "allow_aggregation": True,
        },
    )
    assert status == 201, model
    rng = np.random.default_rng(7)
    updates = [
        [rng.integers(-100, 100, size=LAYER_SIZE + index % 2).astype(float) for index in range(LAYERS)]
        for _ in range(UPDATE_COUNT)
    ]
    for values in updates:
        status, registered = _call(first, "POST", f"/api/v1/models/{model['id']}/register_client/")
        assert status == 200, registered
        status, created = _call(
            first,
            "POST",
            "/api/v1/model_updates/",
            {"federated_model": model["id"], "data": [layer.tolist() for layer in values]},
            client=registered["uuid"],
        )
        assert status == 201, created

    # Execute: kill -9 while the updates are claimed, then start again on the same data and send nothing.
    claimed = _wait_for(lambda: any(row[1] == RUNNING for row in _update_rows(data_dir)), CLAIM_WAIT_SECONDS)
    first.stop(signum=9)
    assert claimed, "the aggregation never claimed the updates"
    assert any(row[1] == RUNNING for row in _update_rows(data_dir)), "the aggregation ended before the kill"
    second = RunningServer(data_dir, admin_password=PASSWORD, env=ENV).wait_ready()
    try:
        recovered = _wait_for(
            lambda: all(row[1] == COMPLETE for row in _update_rows(data_dir)), LEASE_SECONDS + RECOVERY_WAIT_SECONDS
        )

        # Assert: one aggregate holds every update, once, and it is their median.
        rows = _update_rows(data_dir)
        assert recovered, f"updates not aggregated after the restart: {rows}\n{second.stderr()}"
        assert len({row[2] for row in rows}) == 1
        status, aggregates = _call(second, "GET", f"/api/v1/model_aggregates/?federated_model={model['id']}")
        assert status == 200
        assert [aggregate["id"] for aggregate in aggregates] == [rows[0][2]]
        # Lists carry the weights' URL; the detail route inlines them.
        status, aggregate = _call(second, "GET", f"/api/v1/model_aggregates/{rows[0][2]}/")
        assert status == 200
        for index, layer in enumerate(aggregate["result"]):
            expected = np.median([values[index] for values in updates], axis=0)
            np.testing.assert_array_equal(layer, expected)
    finally:
        second.stop()
