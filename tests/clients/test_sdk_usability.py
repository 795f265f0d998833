"""What a user of ``fma_client`` reaches for, against the real local server: waiting for aggregates, typed answers
of ``DeveloperClient``, lists past one page, and ``publish()`` picking the next free version.
"""

import threading
from datetime import datetime

import numpy as np
import pytest

from fma_client import (
    Aggregate,
    AggregateTimeout,
    APIError,
    Artifact,
    BadRequest,
    Model,
    NotFound,
    PayloadTooLarge,
    Score,
    Update,
    UpdateStatus,
    VersionTaken,
    WebClient,
)
from tests.clients.support import AGGREGATE_TIMEOUT, INITIAL, UPDATE, wait_for

pytestmark = pytest.mark.integration

# Short polls: the local server aggregates in milliseconds.
POLL = 0.05
# Parameters past which the service refuses to inline weights as JSON in an answer (FMA_RESPONSE_MAX_BYTES, 6 MB,
# at two bytes a number at least).
TOO_MANY_TO_INLINE = 3_300_000


def make_round_model(developer, clients=2, initial_model=INITIAL):
    """A model aggregating once ``clients`` registered clients have sent, and those clients."""
    model = developer.create_model(
        "round",
        "avg_values_if_data",
        initial_model=initial_model,
        requirement="all_clients",
        allow_aggregation=True,
    )
    web_clients = [WebClient(model.id, url=developer.url, progress=False) for _ in range(clients)]
    for client in web_clients:
        client.register()
    return model, web_clients


def send_round(clients, scale=1.0):
    for client in clients:
        client.send_update([layer * scale for layer in UPDATE], num_examples=1)


class TestWaitingForAggregates:
    def test_a_client_waits_for_the_next_global_model(self, developer):
        model, clients = make_round_model(developer)
        send_round(clients)
        first = clients[0].wait_for_aggregate(timeout=AGGREGATE_TIMEOUT, poll=POLL)
        np.testing.assert_allclose(first["result"][1], [4.0, 5.0])
        with pytest.raises(AggregateTimeout, match=f"model {model.id}"):
            clients[0].wait_for_aggregate(timeout=0.3, poll=POLL)

        # The next round is sent while the client already waits.
        later = threading.Timer(0.3, send_round, args=(clients, 2.0))
        later.start()
        second = clients[0].wait_for_aggregate(after=first["id"], timeout=AGGREGATE_TIMEOUT, poll=POLL)
        later.join()

        assert second["id"] > first["id"]
        np.testing.assert_allclose(second["result"][1], [8.0, 10.0])
        assert set(second) >= {"id", "federated_model", "parent", "result", "validation_score", "created_on"}

    def test_a_client_iterates_over_new_global_models(self, developer):
        _, clients = make_round_model(developer)
        seen = []

        def follow():
            seen.extend(clients[1].iter_aggregates(poll=POLL, idle_timeout=3.0))

        follower = threading.Thread(target=follow)
        follower.start()
        send_round(clients)
        first = clients[0].wait_for_aggregate(timeout=AGGREGATE_TIMEOUT, poll=POLL)
        wait_for(lambda: seen or None)
        send_round(clients, 3.0)
        last = clients[0].wait_for_aggregate(timeout=AGGREGATE_TIMEOUT, poll=POLL)
        follower.join(AGGREGATE_TIMEOUT)

        assert not follower.is_alive(), "the iteration ends after idle_timeout without a new aggregate"
        assert [aggregate["id"] for aggregate in seen] == [first["id"], last["id"]]
        np.testing.assert_allclose(seen[-1]["result"][0], [3.0, 6.0, 9.0])

    def test_a_developer_waits_and_iterates_in_order(self, developer):
        model, clients = make_round_model(developer)
        with pytest.raises(AggregateTimeout):
            developer.wait_for_aggregate(model.id, timeout=0.2, poll=POLL)
        send_round(clients)
        first = developer.wait_for_aggregate(model.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)
        send_round(clients)
        second = developer.wait_for_aggregate(model.id, after=first.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)

        assert isinstance(first, Aggregate)
        assert (first.federated_model, second.parent) == (model.id, first.id)
        assert [row.id for row in developer.iter_aggregates(model.id, poll=POLL, idle_timeout=0.3)] == [
            first.id,
            second.id,
        ]
        assert [row.id for row in developer.iter_aggregates(model.id, after=first.id, idle_timeout=0.3)] == [second.id]


class TestTypedAnswers:
    def test_models_updates_scores_and_artifacts_are_records_with_named_statuses(self, developer):
        model, clients = make_round_model(developer)
        assert isinstance(model, Model)
        assert (model.aggregator, model.requirement, model.allow_aggregation) == (
            "avg_values_if_data",
            "all_clients",
            True,
        )
        assert isinstance(model.created_on, datetime)
        assert sorted(developer.get_model(model.id).clients) == sorted(client.uuid for client in clients)

        clients[0].send_update(UPDATE)
        [pending] = developer.list_updates(model.id)
        assert isinstance(pending, Update)
        assert pending.status is UpdateStatus.PENDING
        assert (pending.client, pending.federated_model) == (clients[0].uuid, model.id)
        clients[1].send_update(UPDATE)
        aggregate = developer.wait_for_aggregate(model.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)

        updates = developer.list_updates(model.id)
        assert [update.status for update in updates] == [UpdateStatus.COMPLETE] * 2
        assert {update.applied_aggregate for update in updates} == {aggregate.id}
        assert developer.list_updates(model.id, status=UpdateStatus.PENDING) == []

        clients[0].send_val_results({"accuracy": 0.5}, aggregate.id)
        [score] = developer.list_scores(aggregate.id)
        assert isinstance(score, Score)
        assert (score.aggregate, score.client, score.validation_results) == (
            aggregate.id,
            clients[0].uuid,
            {"accuracy": 0.5},
        )

        [initial] = developer.list_artifacts(model.id)
        assert isinstance(initial, Artifact)
        assert (initial.version, initial.id) == ("1.0.0", model.current_artifact)

    def test_fields_the_service_adds_later_stay_readable(self):
        row = Score.from_json(
            {"id": 1, "aggregate": 2, "client": "c", "validation_results": {}, "created_on": None, "weight": 3}
        )

        assert row.extra == {"weight": 3}
        assert row.raw["weight"] == 3


class TestLists:
    def test_every_model_past_one_page(self, developer):
        made = {developer.create_model(f"many {index}").id for index in range(201)}

        listed = [model.id for model in developer.list_models()]

        assert made <= set(listed)
        assert len(listed) == len(set(listed))

    def test_updates_and_enrollment_tokens_past_one_page(self, developer):
        model = developer.create_model("pages")
        client = WebClient(model.id, url=developer.url, progress=False)
        client.register()
        sent = {client.send_update(UPDATE)["id"] for _ in range(21)}
        invite = developer.create_model("pages", registration="invite")
        made = {developer.create_enrollment_token(invite.id).id for _ in range(21)}

        assert {update.id for update in developer.list_updates(model.id)} == sent
        assert {token.id for token in developer.list_enrollment_tokens(invite.id)} == made


class TestPublish:
    def test_without_a_version_it_takes_the_next_free_one(self, developer):
        model, clients = make_round_model(developer)
        send_round(clients)
        aggregate = developer.wait_for_aggregate(model.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)

        with pytest.raises(VersionTaken) as taken:
            developer.publish(aggregate, "1.0.0")
        assert isinstance(taken.value, APIError)
        assert (taken.value.version, taken.value.status_code) == ("1.0.0", 400)
        assert "'1.0.0' is taken" in str(taken.value)
        with pytest.raises(BadRequest) as refused:
            developer.publish(aggregate, "9" * 101)
        assert not isinstance(refused.value, VersionTaken)

        assert developer.publish(aggregate).version == "1.1.0"
        assert developer.publish(aggregate.id).version == "1.2.0"
        assert developer.publish(aggregate, "3.4.1").version == "3.4.1"
        published = developer.publish(aggregate)
        assert (published.version, published.federated_model) == ("3.5.0", model.id)
        assert developer.get_model(model.id).current_artifact == published.id
        assert clients[0].get_current_artifact()["version"] == "3.5.0"

    def test_an_aggregate_too_large_to_inline_is_published_by_id(self, developer):
        model, [client] = make_round_model(developer, clients=1, initial_model=None)
        client.send_update({"w": np.ones(TOO_MANY_TO_INLINE, dtype=np.float32)})
        aggregate = developer.wait_for_aggregate(model.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)
        with pytest.raises(PayloadTooLarge):
            developer.get_aggregate(aggregate.id)

        assert developer.publish(aggregate.id).version == "1.0.0"
        with pytest.raises(NotFound):
            developer.publish(aggregate.id + 1000)

    def test_a_model_without_an_initial_model_starts_at_1_0_0(self, developer):
        model = developer.create_model("bare", "avg_values_if_data", requirement="all_clients", allow_aggregation=True)
        client = WebClient(model.id, url=developer.url, progress=False)
        client.register()
        client.send_update(UPDATE)
        aggregate = developer.wait_for_aggregate(model.id, timeout=AGGREGATE_TIMEOUT, poll=POLL)

        assert developer.list_artifacts(model.id) == []
        assert developer.publish(aggregate).version == "1.0.0"
