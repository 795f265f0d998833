"""``fma_client.simulation``: 100 clients of one model registered from one machine, against the real local server."""

import pytest

from fma_client import DeveloperClient, TooManyRequests
from fma_client.simulation import register_clients
from tests.clients.support import INITIAL, PASSWORD, UPDATE
from tests.servers import LOCAL_AGGREGATION, running_server

pytestmark = pytest.mark.integration

CLIENTS = 100
# A bound against a stall, far above the seconds it takes: braked, 100 registrations would take minutes.


@pytest.fixture(scope="module")
def lifted_server(tmp_path_factory):
    """A local server started as the docs say for a simulation: FMA_LOCAL_REGISTRATION_RATE=none."""
    env = LOCAL_AGGREGATION | {"FMA_LOCAL_REGISTRATION_RATE": "none"}
    with running_server(tmp_path_factory.mktemp("lifted"), admin_password=PASSWORD, env=env) as running:
        yield running


def make_model(developer, name):
    return developer.create_model(name, "avg_values_if_data", initial_model=INITIAL)


def assert_all_take_part(clients, developer, model_id):
    assert len({client.uuid for client in clients}) == CLIENTS
    assert len(developer.get_model(model_id).clients) == CLIENTS
    # Registered for real: each client's requests carry its uuid and are served.
    for client in (clients[0], clients[-1]):
        assert client.send_update(UPDATE)["client"] == client.uuid


def test_clients_register_themselves_quickly_where_the_local_rate_lifts_the_brake(lifted_server):
    developer = DeveloperClient(lifted_server.url, username="admin", password=PASSWORD, progress=False)
    model = make_model(developer, "simulation")

    clients = register_clients(model.id, CLIENTS, lifted_server.url)

    assert_all_take_part(clients, developer, model.id)


def test_braked_registrations_stop_at_once_saying_how_to_lift_the_brake(server, developer):
    model = make_model(developer, "braked")

    with pytest.raises(TooManyRequests) as braked:
        register_clients(model.id, CLIENTS, server.url)

    assert any("FMA_LOCAL_REGISTRATION_RATE=none" in note for note in braked.value.__notes__)
    # The brake let through its rate (30 a minute), no more.
    assert 0 < len(developer.get_model(model.id).clients) <= 30


def test_a_developer_adds_the_clients_on_any_deployment(server, developer):
    model = make_model(developer, "added")

    clients = register_clients(model.id, CLIENTS, server.url, developer=developer)

    assert_all_take_part(clients, developer, model.id)


def test_developer_and_enrollment_token_are_refused_together(developer):
    with pytest.raises(ValueError, match="give developer or enrollment_token"):
        register_clients(1, 2, developer=developer, enrollment_token="t")
