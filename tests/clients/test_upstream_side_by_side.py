"""Upstream's unmodified ``fma_connect`` (from PyPI) and ``fma_client`` through the same journey, side by side.

``fma_connect`` 0.0.2 is installed once with pip into ``build/upstream/`` (reused by later runs) and
imported from there; without the package index the test is skipped, saying so.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fma_client import DeveloperClient, WebClient
from tests.clients.support import PASSWORD, wait_for

pytestmark = pytest.mark.integration

UPSTREAM = "fma_connect==0.0.2"
TARGET = Path(__file__).resolve().parents[2] / "build" / "upstream" / UPSTREAM.replace("==", "-")


@pytest.fixture(scope="module")
def fma_connect():
    if not (TARGET / "fma_connect").is_dir():
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(TARGET), UPSTREAM],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if installed.returncode != 0:
            pytest.skip(f"could not install {UPSTREAM} from the package index: {installed.stderr.strip()[-300:]}")
    sys.path.insert(0, str(TARGET))
    try:
        yield importlib.import_module("fma_connect")
    finally:
        sys.path.remove(str(TARGET))


def test_the_same_journey_through_both_clients(server, fma_connect):
    developer = DeveloperClient(server.url, username="admin", password=PASSWORD, progress=False)
    model = developer.create_model(
        "side-by-side",
        "avg_values_if_data",
        initial_model=[[0.0, 0.0], [0.0]],
        requirement="all_clients",
        allow_aggregation=True,
    )
    upstream = fma_connect.WebClient(model.id, url=server.url)
    ours = WebClient(model.id, url=server.url, progress=False)
    upstream.register()
    ours.register()

    upstream_start = upstream.check_for_latest_model()
    ours_start = ours.check_for_latest_model()
    assert upstream_start == {"values": [[0.0, 0.0], [0.0]], "aggregate": None}
    assert [layer.tolist() for layer in ours_start["values"]] == upstream_start["values"]
    assert ours_start["aggregate"] is None

    upstream.send_update([[1.0, 2.0], [3.0]])
    ours.send_update([np.array([3.0, 4.0]), np.array([5.0])])

    upstream_aggregate = wait_for(upstream.check_for_new_model_aggregate)
    ours_aggregate = wait_for(ours.check_for_new_model_aggregate)
    assert upstream_aggregate["result"] == [[2.0, 3.0], [4.0]]
    assert [layer.tolist() for layer in ours_aggregate["result"]] == upstream_aggregate["result"]
    metadata = {key: value for key, value in ours_aggregate.items() if key != "result"}
    assert metadata == {key: value for key, value in upstream_aggregate.items() if key != "result"}
    assert upstream.check_for_new_model_aggregate() is None
    assert ours.check_for_new_model_aggregate() is None

    upstream.send_val_results({"loss": 0.5}, upstream_aggregate["id"])
    ours.send_val_results({"loss": 0.25}, ours_aggregate["id"])
    scores = developer.list_scores(ours_aggregate["id"])
    assert sorted(score.validation_results["loss"] for score in scores) == [0.25, 0.5]

    developer.publish(ours_aggregate["id"], "1.1.0")
    upstream_artifact = upstream.get_current_artifact()
    ours_artifact = ours.get_current_artifact()
    assert upstream_artifact["version"] == ours_artifact["version"] == "1.1.0"
    assert [layer.tolist() for layer in ours_artifact["values"]] == upstream_artifact["values"]
