"""DjangoMetadataConnector, and the whole workflow over the Django connectors on the real database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connections

from fma_core.connectors.base import ClaimKey, ClaimLostError, ModelNotFoundError
from fma_core.connectors.factory import connector_from_settings
from fma_core.settings import resolve_aggregator_settings
from fma_core.workflows.aggregation import agg_service
from fma_django_connectors.connectors.aggregator import DjangoAggConnector
from fma_django_connectors.connectors.metadata import DjangoMetadataConnector
from fma_django_connectors.connectors.model_data import DjangoModelDataConnector
from fma_django_connectors.models import Client, ModelAggregate, ModelUpdate
from fma_django_connectors.storage.weights_storage import weights_load
from tests.fma_django_connectors.workflow_support import (
    make_aggregate,
    make_model,
    make_update,
    result_of,
    statuses,
)

Status = ModelUpdate.Status
pytestmark = pytest.mark.django_db

connector = DjangoMetadataConnector()


def now() -> datetime:
    return datetime.now(UTC)


class TestAggregation:
    def test_pending_updates_become_an_aggregate(self):
        model = make_model()
        previous = make_aggregate(model, [0.0, 0.0])
        first, second = (
            make_update(model, values, client=client)
            for values, client in zip([[1.0, 2.0], [3.0, 4.0]], model.clients.all(), strict=False)
        )

        aggregate = ModelAggregate.objects.get(pk=agg_service(model.pk))

        assert result_of(aggregate) == [2.0, 3.0]
        assert aggregate.parent == previous
        assert statuses(first, second) == [Status.COMPLETE, Status.COMPLETE]
        assert set(aggregate.applied_updates.all()) == {first, second}

    def test_layers_of_different_shapes(self):
        model = make_model(aggregator="average_layers")
        make_update(model, [[1.0, 2.0], [3.0]])
        make_update(model, [[3.0, 4.0], [5.0]])

        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [[2.0, 3.0], [4.0]]

    def test_a_paused_model_is_left_alone(self):
        model = make_model(allow_aggregation=False)
        update = make_update(model, [1.0])

        assert agg_service(model.pk) is None
        assert statuses(update) == [Status.PENDING]

    def test_requirement_not_met_then_met(self):
        model = make_model(requirement="require_x_updates", requirement_args={"num_updates": 2})
        first = make_update(model, [1.0])
        assert agg_service(model.pk) is None
        assert statuses(first) == [Status.PENDING]

        make_update(model, [3.0])
        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [2.0]

    def test_updates_beyond_furthest_base_agg_are_invalid(self):
        model = make_model(furthest_base_agg=1)
        old = make_aggregate(model, [0.0])
        newest = make_aggregate(model, [0.0], parent=old)
        fresh = make_update(model, [2.0], base_aggregate=newest)
        stale = make_update(model, [100.0], base_aggregate=old)

        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [2.0]
        assert statuses(fresh, stale) == [Status.COMPLETE, Status.INVALID]

    def test_updates_of_unregistered_clients_stay_pending(self):
        model = make_model()
        stranger = make_update(model, [100.0], client=Client.objects.create())
        make_update(model, [1.0])

        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [1.0]
        assert statuses(stranger) == [Status.PENDING]

    def test_a_failure_marks_the_updates_failed_and_a_later_run_retries_them(self, caplog):
        model = make_model()
        good = make_update(model, [1.0])
        broken = make_update(model, [3.0])
        intact = broken.data.storage.open(broken.data.name).read()
        with broken.data.storage.open(broken.data.name, "wb") as stream:
            stream.write(b"not weights")

        assert agg_service(model.pk) is None
        assert statuses(good, broken) == [Status.FAILED, Status.FAILED]
        assert "stored weights are unreadable" in caplog.text
        assert not ModelAggregate.objects.exists()

        with broken.data.storage.open(broken.data.name, "wb") as stream:
            stream.write(intact)
        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [2.0]
        assert statuses(good, broken) == [Status.COMPLETE, Status.COMPLETE]

    def test_an_expired_claim_is_reclaimed_and_aggregated(self, settings):
        settings.AGGREGATOR_SETTINGS = {**settings.AGGREGATOR_SETTINGS, "claim_lease_seconds": 60}
        model = make_model()
        abandoned = make_update(model, [1.0], status=Status.RUNNING, claimed_at=now() - timedelta(seconds=61))
        in_progress = make_update(model, [100.0], status=Status.RUNNING, claimed_at=now() - timedelta(seconds=30))

        assert result_of(ModelAggregate.objects.get(pk=agg_service(model.pk))) == [1.0]
        assert statuses(abandoned, in_progress) == [Status.COMPLETE, Status.RUNNING]

    def test_fedopt_state_survives_a_cold_start(self):
        model = make_model(aggregator="fed_adam", aggregator_args={"server_learning_rate": 0.5})
        make_aggregate(model, [0.0, 0.0])
        make_update(model, [1.0, 2.0])
        agg_service(model.pk, connector=connector_from_settings())
        model.refresh_from_db()
        first_state_file = model.aggregator_state.name
        assert first_state_file

        make_update(model, [2.0, 1.0])
        # A new connector, as in a fresh Lambda container: the state must come from storage.
        second = ModelAggregate.objects.get(pk=agg_service(model.pk, connector=connector_from_settings()))

        from fma_core.algorithms import call_aggregator
        from fma_core.serialization import parse_weights
        from fma_core.types import AggregationContext, ClientUpdate, InMemoryUpdates

        def step(current, state, update):
            stream = InMemoryUpdates([ClientUpdate(weights=parse_weights(update))])
            context = AggregationContext(current=parse_weights(current), state=state)
            return call_aggregator("fed_adam", stream, context, {"server_learning_rate": 0.5})

        expected = step(result_of(second.parent), step([0.0, 0.0], None, [1.0, 2.0]).state, [2.0, 1.0])
        np.testing.assert_allclose(result_of(second), expected.weights.layers[0])
        model.refresh_from_db()
        assert model.aggregator_state.name != first_state_file
        assert not model.aggregator_state.storage.exists(first_state_file)

    def test_unknown_model(self):
        with pytest.raises(ModelNotFoundError, match="federated model 424242 does not exist"):
            agg_service(424242)


class TestLineage:
    def test_newest_first_following_parents_up_to_the_limit(self):
        model = make_model()
        root = make_aggregate(model, [0.0])
        middle = make_aggregate(model, [0.0], parent=root)
        make_aggregate(make_model(), [0.0])  # another model's aggregate is no ancestor
        newest = make_aggregate(model, [0.0], parent=middle)

        assert [a.aggregate_id for a in connector.load_lineage(model.pk, limit=None)] == [newest.pk, middle.pk, root.pk]
        assert [a.aggregate_id for a in connector.load_lineage(model.pk, limit=2)] == [newest.pk, middle.pk]
        assert connector.load_lineage(model.pk, limit=1)[0].result_ref == newest.result.name

    def test_aggregates_off_the_newest_ones_line_are_skipped(self):
        model = make_model()
        root = make_aggregate(model, [0.0])
        make_aggregate(model, [0.0])  # no parent: not an ancestor of what follows
        newest = make_aggregate(model, [0.0], parent=root)

        assert [a.aggregate_id for a in connector.load_lineage(model.pk, limit=None)] == [newest.pk, root.pk]

    def test_a_model_without_aggregates_has_none(self):
        assert connector.load_lineage(make_model().pk, limit=None) == []


class TestClaims:
    def test_a_claim_is_exclusive(self):
        model = make_model()
        updates = [make_update(model, [float(i)]) for i in range(3)]
        ids = [u.pk for u in updates]
        first_claim = now()

        assert connector.claim_updates(model.pk, ids[:2], claimed_at=first_claim) == ids[:2]
        assert connector.claim_updates(model.pk, ids, claimed_at=now()) == ids[2:]
        claimed = ModelUpdate.objects.get(pk=ids[0])
        assert (claimed.status, claimed.claimed_at) == (Status.RUNNING, first_claim)

    def test_updates_of_another_model_are_not_claimed(self):
        model, other = make_model(), make_model()
        update = make_update(other, [1.0])

        assert connector.claim_updates(model.pk, [update.pk], claimed_at=now()) == []

    def test_failed_updates_can_be_claimed_again(self):
        model = make_model()
        update = make_update(model, [1.0], status=Status.FAILED)

        assert connector.claim_updates(model.pk, [update.pk], claimed_at=now()) == [update.pk]

    def test_recording_after_the_claim_was_taken_back_changes_nothing(self):
        model = make_model()
        update = make_update(model, [1.0])
        stale_claim = now() - timedelta(hours=1)
        connector.claim_updates(model.pk, [update.pk], claimed_at=stale_claim)
        assert connector.reclaim_expired(model.pk, claimed_before=now()) == [
            ClaimKey(model_id=model.pk, claimed_at=stale_claim, first_update_id=update.pk)
        ]
        connector.claim_updates(model.pk, [update.pk], claimed_at=now())

        with pytest.raises(ClaimLostError, match=rf"updates \[{update.pk}\] are no longer held"):
            connector.record_aggregate(model.pk, result_ref="x.npz", update_ids=[update.pk], claimed_at=stale_claim)
        connector.mark_failed([update.pk], claimed_at=stale_claim)
        assert not ModelAggregate.objects.exists()
        assert statuses(update) == [Status.RUNNING]

    def test_recording_for_a_model_deleted_meanwhile_is_an_error(self):
        model = make_model()
        update = make_update(model, [1.0])
        claim = now()
        connector.claim_updates(model.pk, [update.pk], claimed_at=claim)
        model_id = model.pk
        model.delete()

        with pytest.raises(ModelNotFoundError, match=f"federated model {model_id} was deleted during its aggregation"):
            connector.record_aggregate(model_id, result_ref="x.npz", update_ids=[update.pk], claimed_at=claim)

    def test_a_running_update_without_claim_time_is_reclaimed_naming_no_claim(self):
        model = make_model()
        update = make_update(model, [1.0], status=Status.RUNNING)

        assert connector.reclaim_expired(model.pk, claimed_before=now()) == []
        assert statuses(update) == [Status.PENDING]

    def test_reclaiming_names_each_expired_claim_by_its_time_and_smallest_update(self):
        # Prepare: two expired claims, one of them made at the same instant as a claim of another model, and a
        # claim within its lease.
        model, other = make_model(), make_model()
        first, second, live = now() - timedelta(hours=2), now() - timedelta(hours=1), now()
        updates = [make_update(model, [float(i)]) for i in range(5)]
        others = [make_update(other, [1.0])]
        connector.claim_updates(model.pk, [updates[3].pk, updates[1].pk], claimed_at=first)
        connector.claim_updates(model.pk, [updates[4].pk, updates[2].pk], claimed_at=second)
        connector.claim_updates(model.pk, [updates[0].pk], claimed_at=live)
        connector.claim_updates(other.pk, [others[0].pk], claimed_at=first)

        # Execute
        reclaimed = connector.reclaim_expired(model.pk, claimed_before=now() - timedelta(minutes=1))

        # Assert
        assert reclaimed == [
            ClaimKey(model_id=model.pk, claimed_at=first, first_update_id=updates[1].pk),
            ClaimKey(model_id=model.pk, claimed_at=second, first_update_id=updates[2].pk),
        ]
        assert statuses(*updates, *others) == [Status.RUNNING] + [Status.PENDING] * 4 + [Status.RUNNING]

    def test_release_returns_the_claim_to_pending(self):
        model = make_model()
        update = make_update(model, [1.0])
        claim = now()
        connector.claim_updates(model.pk, [update.pk], claimed_at=claim)

        connector.release_claims([update.pk], claimed_at=claim)

        update.refresh_from_db()
        assert (update.status, update.claimed_at) == (Status.PENDING, None)


class _ClaimTogether(DjangoMetadataConnector):
    """Holds every run between reading the candidates and claiming them, so that all runs claim at once."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def load_candidate_updates(self, model_id):
        candidates = super().load_candidate_updates(model_id)
        self.barrier.wait()
        return candidates


def _in_threads(count: int, target) -> list:
    """Run ``target(index)`` in ``count`` threads; their results, after every thread is done."""
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = target(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_claims_never_share_an_update():
    model = make_model()
    ids = [make_update(model, [float(i)]).pk for i in range(100)]
    barrier = threading.Barrier(8)
    rng = np.random.default_rng(3)
    subsets = [sorted(rng.choice(ids, size=60, replace=False).tolist()) for _ in range(8)]

    def claim(index: int) -> list[int]:
        barrier.wait()
        return DjangoMetadataConnector().claim_updates(model.pk, subsets[index], claimed_at=now())

    claims = _in_threads(8, claim)

    claimed = [pk for claim_ids in claims for pk in claim_ids]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) == set().union(*map(set, subsets))
    assert ModelUpdate.objects.filter(status=Status.RUNNING).count() == len(claimed)


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_aggregations_use_every_update_exactly_once():
    model = make_model(clients=8)
    clients = list(model.clients.all())
    rng = np.random.default_rng(7)
    updates = [make_update(model, rng.normal(size=4).tolist(), client=clients[i % 8]) for i in range(60)]
    runs = 8
    barrier = threading.Barrier(runs)
    settings = resolve_aggregator_settings(None)

    def aggregate(index: int) -> int | None:
        connector = DjangoAggConnector(
            metadata=_ClaimTogether(barrier), model_data=DjangoModelDataConnector(), settings=settings
        )
        return agg_service(model.pk, connector=connector)

    made = [aggregate_id for aggregate_id in _in_threads(runs, aggregate) if aggregate_id is not None]

    assert made, "at least one run aggregated"
    assert statuses(*updates) == [Status.COMPLETE] * len(updates)
    # Every aggregate is exactly the mean of the updates linked to it: an update used by two runs would
    # be linked to only one of them and break the other's mean.
    linked = 0
    for aggregate in ModelAggregate.objects.filter(pk__in=made):
        mine = ModelUpdate.objects.filter(applied_aggregate=aggregate)
        linked += len(mine)
        expected = np.mean([weights_load(update.data).layers[0] for update in mine], axis=0)
        np.testing.assert_allclose(result_of(aggregate), expected)
    assert linked == len(updates)
    # Recordings are serialised: the aggregates form one line, each built on the one before.
    ordered = list(ModelAggregate.objects.filter(federated_model=model).order_by("created_on", "id"))
    assert [a.parent_id for a in ordered] == [None, *[a.pk for a in ordered[:-1]]]
