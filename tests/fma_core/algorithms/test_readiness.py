"""Requirements: all_clients, require_x_updates, require_x_updates_or_seconds."""

import pytest

from fma_core.algorithms.readiness import all_clients, require_x_updates, require_x_updates_or_seconds
from fma_core.types import PendingSummary


def summary(*, registered=3, pending=0, clients=0, oldest=None):
    return PendingSummary(
        registered_clients=registered,
        pending_updates=pending,
        clients_with_pending=clients,
        oldest_pending_age_seconds=oldest,
    )


class TestAllClients:
    @pytest.mark.parametrize(
        ("state", "met"),
        [
            (summary(registered=3, pending=3, clients=3, oldest=1.0), True),
            (summary(registered=3, pending=5, clients=3, oldest=1.0), True),
            (summary(registered=3, pending=5, clients=2, oldest=1.0), False),
            (summary(registered=0, pending=0, clients=0), False),
            (summary(registered=0, pending=1, clients=0, oldest=1.0), True),
        ],
        ids=["each-once", "some-twice", "one-client-missing", "nobody", "no-registered-clients"],
    )
    def test_every_registered_client_has_an_update(self, state, met):
        assert all_clients(state) is met


class TestRequireXUpdates:
    @pytest.mark.parametrize(("pending", "met"), [(0, False), (2, False), (3, True), (4, True)])
    def test_threshold(self, pending, met):
        assert require_x_updates(summary(pending=pending, clients=1, oldest=5.0), num_updates=3) is met


class TestRequireXUpdatesOrSeconds:
    @pytest.mark.parametrize(
        ("state", "met"),
        [
            (summary(pending=3, clients=3, oldest=0.0), True),
            (summary(pending=1, clients=1, oldest=59.9), False),
            (summary(pending=1, clients=1, oldest=60.0), True),
            (summary(pending=0, clients=0, oldest=None), False),
        ],
        ids=["enough-updates", "straggler-waited-too-little", "straggler-waited-long-enough", "nothing-pending"],
    )
    def test_updates_or_waiting_time(self, state, met):
        assert require_x_updates_or_seconds(state, num_updates=3, seconds=60.0) is met

    def test_zero_seconds_goes_as_soon_as_anything_is_pending(self):
        assert require_x_updates_or_seconds(summary(pending=1, clients=1, oldest=0.0), num_updates=10, seconds=0.0)
