"""``fma_client`` (clients/python) against the real local server: the journeys of a developer and its clients.

The server is ``api_service/local_server.py`` in its own process with the ``local`` aggregation trigger
(its own SQLite database, whatever ``FMA_TEST_DATABASE`` says); everything goes over HTTP.
"""

from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from fma_client import (
    BadRequest,
    Forbidden,
    RetryPolicy,
    ServerError,
    ServiceUnreachable,
    TooManyRequests,
    Unauthorized,
    WebClient,
)
from tests.clients.support import wait_for
from tests.servers import serving

pytestmark = pytest.mark.integration


class TestJsonModel:
    """Small weights as the contract's JSON, as upstream clients send them."""

    INITIAL = [np.zeros(3), np.zeros(2)]
    UPDATES = ([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])], [np.array([3.0, 0.0, 1.0]), np.array([0.0, 1.0])])

    def test_register_pull_push_poll_score_publish(self, server, developer):
        model = developer.create_model(
            "json", "avg_values_if_data", initial_model=self.INITIAL, requirement="all_clients", allow_aggregation=True
        )
        clients = [WebClient(model.id, url=server.url, progress=False) for _ in self.UPDATES]
        for client in clients:
            client.register()
            latest = client.check_for_latest_model()
            assert latest["aggregate"] is None
            np.testing.assert_array_equal(latest["values"][0], np.zeros(3))
            assert client.check_for_latest_model() is None, "nothing newer than what it has seen"

        for client, update in zip(clients, self.UPDATES, strict=True):
            sent = client.send_update(update, num_examples=5)
            assert sent["data"] == [layer.tolist() for layer in update]
            assert sent["num_examples"] == 5

        aggregate = wait_for(clients[0].check_for_new_model_aggregate)
        np.testing.assert_allclose(aggregate["result"][0], [2.0, 1.0, 2.0])
        np.testing.assert_allclose(aggregate["result"][1], [2.0, 3.0])
        assert clients[0].check_for_new_model_aggregate() is None
        assert clients[1].check_for_new_model_aggregate(update_after=aggregate["id"]) is None
        assert clients[1].check_for_latest_model() is None, "it was told of that aggregate"
        assert clients[1].check_for_latest_model(update_after=-1)["aggregate"] == aggregate["id"]

        clients[0].send_val_results({"accuracy": 0.75}, aggregate["id"])
        with pytest.raises(BadRequest) as second:
            clients[0].send_val_results({"accuracy": 0.75}, aggregate["id"])
        assert second.value.status_code == 400
        assert second.value.message == f"Client {clients[0].uuid} has already scored aggregate {aggregate['id']}."
        scores = developer.list_scores(aggregate["id"])
        assert [score.validation_results for score in scores] == [{"accuracy": 0.75}]

        assert [row.id for row in developer.list_aggregates(model.id)] == [aggregate["id"]]
        developer.publish(aggregate["id"], "2.0.0")
        artifact = clients[1].get_current_artifact()
        assert artifact["version"] == "2.0.0"
        np.testing.assert_allclose(artifact["values"][1], [2.0, 3.0])

    def test_pause_and_resume(self, developer):
        model = developer.create_model("paused", allow_aggregation=True)

        assert developer.pause_model(model.id).allow_aggregation is False
        assert developer.resume_model(model.id).allow_aggregation is True

    def test_errors_carry_the_status_and_the_services_message(self, server, developer):
        model = developer.create_model("errors")
        stranger = WebClient(model.id, uuid="00000000-0000-4000-8000-000000000000", url=server.url)

        with pytest.raises(Unauthorized) as unknown:
            stranger.check_for_new_model_aggregate()
        assert (unknown.value.status_code, unknown.value.message) == (401, "Invalid UUID")
        with pytest.raises(BadRequest) as refused:
            developer.create_model("bad", "no_such_aggregator")
        assert "Unknown aggregator 'no_such_aggregator'" in refused.value.body["aggregator"][0]
        other = developer.create_model("other")
        outsider = WebClient(other.id, url=server.url)
        outsider.register()
        outsider._federated_model_id = model.id
        with pytest.raises(Forbidden):
            outsider.check_for_latest_model()
        with pytest.raises(Forbidden) as not_registered:
            outsider.check_for_new_model_aggregate()
        assert not_registered.value.status_code == 403
        assert not_registered.value.message == "You do not have permission to perform this action."


class TestBinaryModel:
    """Named float32 tensors (a state_dict) and weights past the upload threshold: uploads, dtypes kept."""

    def test_state_dict_round_trip_in_float32(self, server, developer):
        rng = np.random.default_rng(0)
        # 300k float32 parameters: 1.2 MB, above the upload threshold.
        initial = {"fc.weight": np.zeros((600, 500), np.float32), "fc.bias": np.zeros(500, np.float32)}
        model = developer.create_model(
            "binary", "fed_avg", initial_model=initial, requirement="all_clients", allow_aggregation=True
        )
        clients = [WebClient(model.id, url=server.url, progress=False) for _ in range(2)]
        updates = [{name: rng.normal(size=value.shape).astype(np.float32) for name, value in initial.items()}]
        updates.append({name: -value for name, value in updates[0].items()})
        for client in clients:
            client.register()
            start = client.check_for_latest_model()
            assert {name: value.dtype for name, value in start["values"].items()} == {
                "fc.weight": np.float32,
                "fc.bias": np.float32,
            }

        for client, update, count in zip(clients, updates, (1, 3), strict=True):
            client.send_update(update, num_examples=count)

        aggregate = wait_for(clients[0].check_for_new_model_aggregate)
        assert set(aggregate["result"]) == {"fc.weight", "fc.bias"}
        assert aggregate["result"]["fc.weight"].dtype == np.float32
        np.testing.assert_allclose(aggregate["result"]["fc.bias"], -0.5 * updates[0]["fc.bias"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(
            developer.get_aggregate_result(aggregate["id"])["fc.bias"], aggregate["result"]["fc.bias"]
        )

    def test_tensor_likes_are_taken_without_torch(self, server, developer):
        class Tensor:
            """What the client asks of a PyTorch tensor."""

            def __init__(self, values):
                self.values = values

            def detach(self):
                return self

            def cpu(self):
                return self

            def numpy(self):
                return self.values

        model = developer.create_model("torch-like", initial_model={"w": np.zeros(4, np.float32)})
        client = WebClient(model.id, url=server.url, progress=False)
        client.register()

        sent = client.send_update({"w": Tensor(np.arange(4, dtype=np.float32))})

        assert sent["data"] == [[0.0, 1.0, 2.0, 3.0]], "JSON renders the tensors as a list, without names"


class _ScriptedService(BaseHTTPRequestHandler):
    """A service that answers from a script: (status, headers) per request, then 200 ``[]``."""

    script: list = []
    seen: list = []

    def _answer(self):
        self.seen.append((self.command, self.path))
        status, headers = self.script.pop(0) if self.script else (200, {})
        body = b"[]" if status == 200 else b'{"detail": "scripted"}'
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    _ScriptedService.script, _ScriptedService.seen = [], []
    with serving(_ScriptedService) as service:
        yield service


def _client(service, sleeps, attempts=4):
    policy = RetryPolicy(attempts=attempts, base=1.0, cap=8.0, sleep=sleeps.append)
    return WebClient(
        1, uuid="00000000-0000-4000-8000-000000000001", url=f"http://127.0.0.1:{service.server_port}/", retry=policy
    )


class TestRetries:
    def test_a_poll_is_retried_on_429_and_5xx_honouring_retry_after(self, scripted, caplog):
        _ScriptedService.script = [(429, {"Retry-After": "7"}), (503, {}), (502, {})]
        sleeps = []

        assert _client(scripted, sleeps).check_for_new_model_aggregate() is None

        # Each wait is a warning naming the route, the answer and the wait.
        assert [record.getMessage() for record in caplog.records] == [
            f"GET /api/v1/model_aggregates/ answered 429, Retry-After 7 s: waiting {sleeps[0]:.1f} s "
            "before attempt 2 of 4",
            f"GET /api/v1/model_aggregates/ answered 503: waiting {sleeps[1]:.1f} s before attempt 3 of 4",
            f"GET /api/v1/model_aggregates/ answered 502: waiting {sleeps[2]:.1f} s before attempt 4 of 4",
        ]

        polls = [path for _, path in _ScriptedService.seen if path.startswith("/api/v1/model_aggregates/")]
        assert len(polls) == 4
        assert sleeps[0] >= 7
        # Full jitter: each delay at most base * 2**attempt.
        assert 0 <= sleeps[1] <= 2
        assert 0 <= sleeps[2] <= 4

    def test_retries_stop_with_the_typed_error(self, scripted):
        _ScriptedService.script = [(503, {})] * 4
        sleeps = []

        with pytest.raises(ServerError) as failed:
            _client(scripted, sleeps).check_for_new_model_aggregate()

        assert (failed.value.status_code, failed.value.message) == (503, "scripted")
        assert len(_ScriptedService.seen) == 4
        assert len(sleeps) == 3

    def test_an_update_is_not_sent_twice_after_a_5xx(self, scripted):
        _ScriptedService.script = [(502, {})]

        with pytest.raises(ServerError):
            _client(scripted, []).send_update([1.0, 2.0])

        assert _ScriptedService.seen == [("POST", "/api/v1/model_updates/")]

    def test_an_update_is_sent_again_after_a_429(self, scripted):
        _ScriptedService.script = [(429, {"Retry-After": "1"}), (429, {"Retry-After": "1"})]

        with pytest.raises(TooManyRequests):
            _client(scripted, [], attempts=2).send_update([1.0, 2.0])

        assert len(_ScriptedService.seen) == 2

    def test_a_service_that_is_not_there(self, silent_port, caplog):
        sleeps = []
        client = WebClient(
            1, url=f"http://127.0.0.1:{silent_port}/", retry=RetryPolicy(attempts=3, sleep=sleeps.append)
        )

        with pytest.raises(ServiceUnreachable):
            client.register()

        assert len(sleeps) == 2, "a refused connection never reached the service: retried"
        said = [record.getMessage() for record in caplog.records]
        assert len(said) == 2
        assert said[0].startswith("POST /api/v1/models/1/register_client/ no connection (")


@pytest.fixture
def silent_port():
    """A port nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
