"""PyTorch and Keras round trips through the real local server, with the real packages.

They run in the virtualenv of ``make frameworks-install`` (PyTorch's CPU build and Keras on its torch
backend, kept apart from the shared virtualenv); where it is missing the tests skip, saying so.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PYTHON = REPOSITORY / ".venv-frameworks" / "bin" / "python"
JOURNEY = Path(__file__).with_name("frameworks_journey.py")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not PYTHON.exists(),
        reason=f"PyTorch and Keras are not installed in {PYTHON.parent.parent}: run make frameworks-install",
    ),
]


def _journey(*args: str):
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY / "clients" / "python"), "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [str(PYTHON), str(JOURNEY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_the_aggregate_loads_back_with_the_same_names_shapes_and_dtypes(framework, server, developer):
    token = developer._transport.headers["Authorization"].removeprefix("Token ")
    report = _journey(framework, server.url, token)

    assert report["after"] == report["before"]
    # The service kept every name and shape, and the float tensors' dtype; integer counters come back as a
    # float64 mean, cast back to the model's dtype on loading.
    assert {name: shape for name, (shape, _) in report["wire"].items()} == {
        name: shape for name, (shape, _) in report["sent"].items()
    }
    floats = {name: dtype for name, (_, dtype) in report["sent"].items() if dtype.startswith("float")}
    assert {name: report["wire"][name][1] for name in floats} == floats
    assert len(report["before"]) >= 6, "weights, biases and the normalisation's statistics"
    # Each float tensor is the clients' mean (initial + 2); counters stay what they were.
    assert max(report["errors"].values()) < 1e-5, report["errors"]


def test_a_bfloat16_state_dict_is_refused_before_sending():
    refused = "tensors ['w'] are bfloat16 or bool, which the service does not store: convert them"

    assert _journey("bfloat16") == refused
