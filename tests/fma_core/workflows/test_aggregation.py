"""The aggregation workflow, branch by branch, over the in-memory connectors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fma_core.connectors.base import ClaimKey, ModelNotFoundError
from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError, ServiceUnavailableError
from fma_core.serialization import Weights
from fma_core.workflows.aggregation import agg_service
from tests.fma_core.connectors.memory import (
    COMPLETE,
    FAILED,
    INVALID,
    MEMORY_SETTINGS,
    PENDING,
    RUNNING,
    StoredAggregate,
    StoredModel,
    StoredUpdate,
)

MODEL_ID = 1


def weights(*values: float) -> Weights:
    return Weights(layers=(np.asarray(values, dtype=np.float64),), layered=False)


class World:
    """A model, its aggregates and its updates, in the in-memory connectors."""

    def __init__(self, **model_fields) -> None:
        self.connector = connector_from_settings(MEMORY_SETTINGS)
        self.metadata = self.connector.metadata
        self.data = self.connector.model_data
        self.model = StoredModel(model_id=MODEL_ID, clients={"a", "b", "c"}, **model_fields)
        self.metadata.models[MODEL_ID] = self.model

    def aggregate(self, *values: float) -> int:
        newest = self.metadata.aggregates[-1].aggregate_id if self.metadata.aggregates else None
        aggregate_id = self.metadata.next_id()
        self.metadata.aggregates.append(
            StoredAggregate(aggregate_id, MODEL_ID, parent_id=newest, result_ref=self.data.store(weights(*values)))
        )
        return aggregate_id

    def update(self, client: str, *values: float, **fields) -> StoredUpdate:
        update = StoredUpdate(
            update_id=self.metadata.next_id(),
            model_id=MODEL_ID,
            client_id=client,
            data_ref=self.data.store(weights(*values)),
            **fields,
        )
        self.metadata.updates[update.update_id] = update
        return update

    def run(self) -> int | None:
        return agg_service(MODEL_ID, connector=self.connector)

    def result(self, aggregate_id: int) -> list[float]:
        (aggregate,) = (a for a in self.metadata.aggregates if a.aggregate_id == aggregate_id)
        return self.data.load_weights(aggregate.result_ref).layers[0].tolist()

    def parent(self, aggregate_id: int) -> int | None:
        (aggregate,) = (a for a in self.metadata.aggregates if a.aggregate_id == aggregate_id)
        return aggregate.parent_id


class TestAggregates:
    def test_pending_updates_become_an_aggregate_of_their_mean(self):
        world = World()
        previous = world.aggregate(0.0, 0.0)
        first, second = world.update("a", 1.0, 2.0), world.update("b", 3.0, 6.0)

        aggregate_id = world.run()

        assert world.result(aggregate_id) == [2.0, 4.0]
        assert world.parent(aggregate_id) == previous
        assert [first.status, second.status] == [COMPLETE, COMPLETE]
        assert [first.applied_aggregate_id, second.applied_aggregate_id] == [aggregate_id, aggregate_id]

    def test_a_second_run_with_nothing_pending_makes_no_aggregate(self):
        world = World()
        world.update("a", 1.0)
        first = world.run()

        assert world.run() is None
        assert [a.aggregate_id for a in world.metadata.aggregates] == [first]

    def test_the_models_aggregator_arguments_are_used(self):
        world = World(aggregator="fed_trimmed_mean", aggregator_args={"beta": 0.25})
        for client, value in zip("abcd", [1.0, 2.0, 3.0, 100.0], strict=True):
            world.model.clients.add(client)
            world.update(client, value)

        assert world.result(world.run()) == [2.5]

    def test_aggregator_state_is_kept_for_the_next_run(self):
        world = World(aggregator="fed_adam")
        world.aggregate(0.0, 0.0)
        world.update("a", 1.0, 1.0)

        world.run()
        state_after_first = world.data.states[MODEL_ID]
        world.update("a", 2.0, 2.0)
        world.run()

        assert len(state_after_first.layers) == 2  # first then second moment of the one layer
        assert world.data.states[MODEL_ID] is not state_after_first

    def test_an_aggregator_state_that_cannot_be_kept_is_logged_and_the_aggregate_stands(self, caplog):
        world = World(aggregator="fed_adam")
        world.aggregate(0.0)
        update = world.update("a", 1.0)

        def storage_down(model_id, state):
            raise OSError("storage unavailable")

        world.data.save_aggregator_state = storage_down

        aggregate_id = world.run()

        assert aggregate_id is not None
        assert update.status == COMPLETE
        assert f"model 1: aggregate {aggregate_id} recorded but its aggregator state was not kept" in caplog.text
        assert "storage unavailable" in caplog.text

    def test_unknown_model(self):
        world = World()
        with pytest.raises(ModelNotFoundError, match="federated model 99 does not exist"):
            agg_service(99, connector=world.connector)


class TestPausedModel:
    def test_a_paused_model_is_not_aggregated(self):
        world = World(allow_aggregation=False)
        update = world.update("a", 1.0)

        assert world.run() is None
        assert update.status == PENDING
        assert world.metadata.aggregates == []


class TestRequirement:
    def test_not_met_leaves_the_updates_pending(self):
        world = World(requirement="require_x_updates", requirement_args={"num_updates": 3})
        updates = [world.update("a", 1.0), world.update("b", 2.0)]

        assert world.run() is None
        assert [u.status for u in updates] == [PENDING, PENDING]

    def test_met_aggregates(self):
        world = World(requirement="require_x_updates", requirement_args=[3])
        for client, value in zip("abc", [1.0, 2.0, 6.0], strict=True):
            world.update(client, value)

        assert world.result(world.run()) == [3.0]

    def test_all_clients_waits_for_every_registered_client(self):
        world = World(requirement="all_clients")
        world.update("a", 1.0)
        world.update("b", 1.0)
        assert world.run() is None

        world.update("c", 4.0)
        assert world.result(world.run()) == [2.0]

    def test_an_unknown_requirement_fails_before_claiming(self):
        world = World(requirement="no_such_requirement")
        update = world.update("a", 1.0)

        with pytest.raises(ConfigurationError, match="no_such_requirement"):
            world.run()
        assert update.status == PENDING

    def test_a_requirement_no_longer_met_after_a_concurrent_claim_releases_the_rest(self):
        world = World(requirement="require_x_updates", requirement_args={"num_updates": 2})
        taken, left = world.update("a", 1.0), world.update("b", 2.0)
        claim = world.metadata.claim_updates

        def claim_after_another_run(model_id, update_ids, *, claimed_at):
            taken.status, taken.claimed_at = RUNNING, claimed_at - timedelta(seconds=1)
            return claim(model_id, update_ids, claimed_at=claimed_at)

        world.metadata.claim_updates = claim_after_another_run

        assert world.run() is None
        assert (left.status, left.claimed_at) == (PENDING, None)
        assert taken.status == RUNNING


class TestEligibility:
    def test_updates_beyond_furthest_base_agg_are_invalid_and_never_block(self):
        world = World(furthest_base_agg=2, requirement="require_x_updates", requirement_args={"num_updates": 2})
        oldest = world.aggregate(0.0)
        middle = world.aggregate(0.0)
        newest = world.aggregate(0.0)
        fresh = world.update("a", 3.0, base_aggregate_id=newest)
        one_behind = world.update("b", 5.0, base_aggregate_id=middle)
        two_behind = world.update("c", 100.0, base_aggregate_id=oldest)
        from_initial_model = world.update("c", 100.0, base_aggregate_id=None)

        aggregate_id = world.run()

        assert world.result(aggregate_id) == [4.0]
        assert [fresh.status, one_behind.status] == [COMPLETE, COMPLETE]
        assert [two_behind.status, from_initial_model.status] == [INVALID, INVALID]

    def test_without_aggregates_an_update_on_no_base_is_fresh(self):
        world = World(furthest_base_agg=1)
        update = world.update("a", 1.0)

        assert world.result(world.run()) == [1.0]
        assert update.status == COMPLETE

    def test_staleness_reaches_the_aggregator(self):
        # fedbuff weighs an update by 1 / sqrt(1 + staleness): staleness 0 and 3 weigh 1 and 1/2.
        world = World(aggregator="fedbuff")
        base = world.aggregate(0.0)
        for _ in range(2):
            world.aggregate(0.0)
        newest = world.aggregate(0.0)
        world.update("a", 3.0, base_aggregate_id=newest)
        world.update("b", 6.0, base_aggregate_id=base)

        assert world.result(world.run()) == pytest.approx([(3.0 * 1 + 6.0 * 0.5) / 1.5])

    def test_updates_of_unregistered_clients_stay_pending_and_count_for_nothing(self):
        world = World(requirement="require_x_updates", requirement_args={"num_updates": 2})
        world.update("a", 1.0)
        stranger = world.update("stranger", 50.0)

        assert world.run() is None
        assert stranger.status == PENDING

        world.model.clients.add("stranger")
        assert world.result(world.run()) == [25.5]
        assert stranger.status == COMPLETE


class TestFailures:
    def test_a_failed_aggregation_marks_its_updates_failed_and_a_later_run_retries_them(self, caplog):
        world = World()
        good = world.update("a", 1.0)
        unreadable = world.update("b", 3.0)
        stored = world.data.files.pop(unreadable.data_ref)

        with caplog.at_level(logging.ERROR, logger="fma_core.workflows.aggregation"):
            assert world.run() is None
        assert [good.status, unreadable.status] == [FAILED, FAILED]
        assert f"no stored weights named {unreadable.data_ref!r}" in caplog.text
        assert world.metadata.aggregates == []

        world.data.files[unreadable.data_ref] = stored
        aggregate_id = world.run()
        assert world.result(aggregate_id) == [2.0]
        assert [good.status, unreadable.status] == [COMPLETE, COMPLETE]

    def test_a_storage_that_fails_is_raised_and_leaves_the_updates_pending_for_the_next_run(self, monkeypatch, caplog):
        world = World()
        updates = [world.update("a", 1.0), world.update("b", 3.0)]
        outage = ServiceUnavailableError("the storage is unreachable")

        def unreachable(ref):
            raise outage

        monkeypatch.setattr(world.data, "open_weights", unreachable)
        with (
            caplog.at_level(logging.ERROR, logger="fma_core.workflows.aggregation"),
            pytest.raises(ServiceUnavailableError) as raised,
        ):
            world.run()
        assert raised.value is outage
        assert [update.status for update in updates] == [PENDING, PENDING]
        assert f"update(s) {[u.update_id for u in updates]} stay pending" in caplog.text
        assert world.metadata.aggregates == []

        monkeypatch.undo()
        assert world.result(world.run()) == [2.0]
        assert [update.status for update in updates] == [COMPLETE, COMPLETE]

    def test_when_the_claim_cannot_be_released_either_the_lease_brings_the_updates_back(self, monkeypatch):
        world = World()
        update = world.update("a", 1.0)

        def unreachable(*args, **kwargs):
            raise ServiceUnavailableError("the database is unreachable")

        monkeypatch.setattr(world.data, "open_weights", unreachable)
        monkeypatch.setattr(world.metadata, "release_claims", unreachable)
        with pytest.raises(ServiceUnavailableError):
            world.run()
        assert update.status == RUNNING

        monkeypatch.undo()
        update.claimed_at = update.renewed_at = datetime.now(UTC) - world.connector.claim_lease - timedelta(seconds=1)
        assert world.result(world.run()) == [1.0]

    def test_too_few_updates_for_the_aggregator_stay_pending(self, caplog):
        world = World(aggregator="krum", aggregator_args={"f": 1})
        updates = [world.update(client, 1.0) for client in "abc"]

        assert world.run() is None
        assert [(u.status, u.claimed_at) for u in updates] == [(PENDING, None)] * 3
        assert "krum with f=1 needs at least 2f + 3 = 5 updates, got 3" in caplog.text

        for client in "de":
            world.model.clients.add(client)
            world.update(client, 1.0)
        assert world.result(world.run()) == [1.0]

    def test_an_expired_claim_is_taken_back_and_aggregated(self):
        world = World()
        abandoned = world.update("a", 2.0, status=RUNNING, claimed_at=datetime.now(UTC) - timedelta(hours=1))
        in_progress = world.update("b", 100.0, status=RUNNING, claimed_at=datetime.now(UTC))

        aggregate_id = world.run()

        assert world.result(aggregate_id) == [2.0]
        assert abandoned.status == COMPLETE
        assert in_progress.status == RUNNING

    def test_the_result_a_dead_run_wrote_goes_with_its_claim_and_a_live_runs_stays(self):
        # Prepare: a run that died after storing its result (claimed an hour ago), and one at work (claimed now)
        # that stored its result and is about to record it.
        world = World()
        dead_claim, live_claim = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
        dead = [world.update(client, 2.0, status=RUNNING, claimed_at=dead_claim) for client in "ab"]
        live = world.update("c", 100.0, status=RUNNING, claimed_at=live_claim)
        dead_result = world.data.save_aggregate_result(
            ClaimKey(model_id=MODEL_ID, claimed_at=dead_claim, first_update_id=dead[0].update_id), weights(9.0)
        )
        live_result = world.data.save_aggregate_result(
            ClaimKey(model_id=MODEL_ID, claimed_at=live_claim, first_update_id=live.update_id), weights(100.0)
        )

        # Execute
        aggregate_id = world.run()

        # Assert: the dead run's updates are aggregated once, its result deleted; the live run keeps its file.
        assert world.result(aggregate_id) == [2.0]
        assert [update.applied_aggregate_id for update in dead] == [aggregate_id] * 2
        assert dead_result not in world.data.files
        assert (live.status, world.data.files[live_result].layers[0].tolist()) == (RUNNING, [100.0])

    def test_a_dead_runs_result_that_cannot_be_deleted_is_logged_and_its_updates_are_aggregated(self, caplog):
        world = World()
        dead = world.update("a", 2.0, status=RUNNING, claimed_at=datetime.now(UTC) - timedelta(hours=1))

        def storage_down(ref):
            raise OSError("storage unreachable")

        world.data.delete_weights = storage_down

        assert world.result(world.run()) == [2.0]
        assert dead.status == COMPLETE
        assert f"could not delete memory/aggregates/{MODEL_ID}-" in caplog.text

    def test_a_run_whose_lease_expired_mid_aggregation_records_nothing(self):
        # Run A claims and loads slowly; meanwhile run B (lease long expired for it) takes the updates back
        # and aggregates them. A must not record a second aggregate of the same updates.
        world = World()
        update = world.update("a", 1.0)
        load = world.data.load_weights
        runs_b: list[int | None] = []

        def slow_load(ref):
            world.data.load_weights = load
            world.connector.claim_lease = timedelta(seconds=-1)
            runs_b.append(world.run())
            return load(ref)

        world.data.load_weights = slow_load

        assert world.run() is None
        (b_aggregate,) = runs_b
        assert [a.aggregate_id for a in world.metadata.aggregates] == [b_aggregate]
        assert (update.status, update.applied_aggregate_id) == (COMPLETE, b_aggregate)
        # A's result was removed again: only the update and B's result remain stored.
        assert len(world.data.files) == 2


class TestHeartbeat:
    def test_a_running_aggregation_renews_its_claim_as_it_reads_the_updates(self):
        world = World()
        updates = [world.update(client, 1.0) for client in "abc"]
        # A lease so short that every read is due for a renewal.
        world.connector.claim_lease = timedelta(microseconds=3)
        open_weights = world.data.open_weights
        seen: list[list[datetime | None]] = []

        def recording_open(ref):
            seen.append([update.renewed_at for update in updates])
            return open_weights(ref)

        world.data.open_weights = recording_open

        assert world.run() is not None
        renewals = [moments[0] for moments in seen]
        assert None not in renewals
        assert renewals == sorted(renewals)
        assert all(len(set(moments)) == 1 for moments in seen)

    def test_a_run_whose_claim_was_taken_back_stops_at_its_next_heartbeat(self, caplog):
        world = World()
        updates = [world.update(client, 1.0) for client in "ab"]
        world.connector.claim_lease = timedelta(microseconds=3)
        open_weights = world.data.open_weights

        def reclaimed_meanwhile(ref):
            # Another run saw the claim as expired and took the updates back.
            world.metadata.reclaim_expired(MODEL_ID, claimed_before=datetime.now(UTC) + timedelta(hours=1))
            return open_weights(ref)

        world.data.open_weights = reclaimed_meanwhile

        assert world.run() is None
        assert world.metadata.aggregates == []
        assert [update.status for update in updates] == [PENDING, PENDING]
        assert "expired before the aggregate was recorded" in caplog.text
