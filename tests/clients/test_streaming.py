"""Weights streamed from and to files through the real local server: exact round trips, no payload in memory."""

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from fma_client import RetryPolicy, WebClient, read_weights
from fma_client.transport import Transport
from tests.clients.support import wait_for

pytestmark = pytest.mark.integration


def _state_dict(seed: int, *, counters: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {
        "encoder.weight": rng.normal(size=(300, 400)).astype(np.float32),
        "encoder.bias": rng.normal(size=400).astype(np.float32),
        "head.weight": rng.normal(size=(400, 10)),
    }
    # Integer tensors (a 0-d one too) travel as they are; aggregated, they become float64 means.
    counts = {"steps": np.array(7, dtype=np.int64), "seen": np.arange(5, dtype=np.int32)}
    return {**tensors, **counts} if counters else tensors


def _read_file(path: Path) -> dict[str, np.ndarray]:
    with safe_open(str(path), framework="numpy") as file:
        return {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118 (safe_open is no mapping)


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], *, rtol: float = 0.0) -> None:
    assert set(got) == set(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype, name
        np.testing.assert_allclose(got[name], array, rtol=rtol, atol=0, err_msg=name)


class TestFiles:
    def test_arrays_go_up_through_a_file_and_come_back_exactly(self, server, developer):
        model = developer.create_model("from-arrays", initial_model=_state_dict(3))
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()

        _assert_same(client.check_for_latest_model()["values"], _state_dict(3))
        assert client.check_for_latest_model(update_after=-2)["values"]["steps"].shape == ()

    def test_a_file_goes_up_as_it_is_and_comes_back_to_a_file(self, server, developer, tmp_path):
        source = tmp_path / "initial.safetensors"
        save_file(_state_dict(1), source)
        model = developer.create_model("from-file", initial_model=source)
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()

        target = tmp_path / "latest.safetensors"
        assert client.download_latest_model(target) is None, "the initial model is no aggregate"

        _assert_same(_read_file(target), _state_dict(1))
        _assert_same(read_weights(target), _state_dict(1))

    def test_an_update_from_a_file_is_aggregated_and_the_aggregate_streams_to_a_file(self, server, developer, tmp_path):
        initial = {name: np.zeros_like(array) for name, array in _state_dict(0, counters=False).items()}
        model = developer.create_model(
            "file-updates", initial_model=initial, requirement="all_clients", allow_aggregation=True
        )
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()
        update = tmp_path / "update.safetensors"
        save_file(_state_dict(2, counters=False), update)

        client.send_update(update, num_examples=3)
        aggregate = wait_for(client.check_for_new_model_aggregate)

        target = developer.download_aggregate(aggregate["id"], tmp_path / "aggregate.safetensors")
        # One update: its mean is itself (up to the float64 accumulator's rounding), in the model's dtypes.
        _assert_same(_read_file(target), _state_dict(2, counters=False), rtol=1e-6)
        _assert_same(_read_file(target), aggregate["result"])


class TestUploadBody:
    def test_the_body_is_streamed_from_a_file_with_its_length(self, server, developer):
        """requests gets a file-like body (read in blocks) and a Content-Length, never the payload's bytes."""
        model = developer.create_model("streamed", initial_model={"w": np.zeros(3, np.float32)})
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()
        sent = []
        client._transport.session.hooks["response"].append(lambda response, **_: sent.append(response.request))
        weights = {"w": np.arange(3, dtype=np.float32)}

        client.send_update(weights)

        (transfer,) = [request for request in sent if request.method == "PUT"]
        assert not isinstance(transfer.body, bytes | bytearray | memoryview | io.BytesIO), "the payload in memory"
        assert hasattr(transfer.body, "read")
        assert "Transfer-Encoding" not in transfer.headers
        (upload,) = [request for request in sent if request.url.endswith("/api/v1/uploads/")]
        assert transfer.headers["Content-Length"] == str(_json(upload)["size"])

    def test_a_file_is_sent_byte_for_byte(self, server, developer, tmp_path):
        """The size and SHA-256 announced are the file's own: the service stores exactly those bytes."""
        model = developer.create_model("as-is", initial_model={"w": np.zeros(3, np.float32)})
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()
        sent = []
        client._transport.session.hooks["response"].append(lambda response, **_: sent.append(response.request))
        path = tmp_path / "update.safetensors"
        save_file({"w": np.arange(3, dtype=np.float32)}, path, metadata={"note": "kept"})

        client.send_update(path)

        (upload,) = [request for request in sent if request.url.endswith("/api/v1/uploads/")]
        announced = _json(upload)
        assert announced["size"] == path.stat().st_size
        assert announced["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def _json(request) -> dict:
    return json.loads(request.body)


class _FlakyStore(BaseHTTPRequestHandler):
    """A transfer URL that answers the first PUT 503 and the next 200, keeping each body it read."""

    bodies: list = []

    def do_PUT(self):
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(503 if len(self.bodies) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_retried_upload_sends_the_whole_file_again(tmp_path):
    store = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyStore)
    threading.Thread(target=store.serve_forever, daemon=True).start()
    _FlakyStore.bodies = []
    payload = np.random.default_rng(0).bytes(3 * 1024 * 1024 + 5)  # a few blocks and a partial one
    (tmp_path / "body").write_bytes(payload)
    transport = Transport(retry=RetryPolicy(attempts=2, sleep=lambda _: None), progress=False)
    try:
        with (tmp_path / "body").open("rb") as file:
            transport.upload(f"http://127.0.0.1:{store.server_port}/put", "PUT", file, len(payload), {})
    finally:
        store.shutdown()
        store.server_close()

    assert _FlakyStore.bodies == [payload, payload]
