"""``fma_client`` on models a developer controls registration to (``invite``, ``closed``), against the real server.

The developer makes enrollment tokens and adds clients through ``DeveloperClient``; ``WebClient`` registers
with a token, alone or together with its Ed25519 key on a ``signed`` model. A refused registration is the
service's unknown-model 404, which the SDK raises as ``NotFound``.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fma_client import BadRequest, NotFound, WebClient, signing
from fma_django_connectors.client_ids import client_public_id
from tests.clients.support import INITIAL, UPDATE

pytestmark = pytest.mark.integration

# The service's answer to an unknown model id, which is also its answer to every refused registration.
UNKNOWN_MODEL = "No FederatedModel matches the given query."


def make_model(developer, registration, **fields):
    return developer.create_model(
        registration, "avg_values_if_data", initial_model=INITIAL, registration=registration, **fields
    )


def pulls_and_pushes(client, model_id):
    latest = client.check_for_latest_model()
    assert latest["aggregate"] is None
    np.testing.assert_array_equal(latest["values"][0], np.zeros(3))
    sent = client.send_update(UPDATE)
    assert (sent["federated_model"], sent["client"]) == (model_id, client.uuid)


class TestInviteModel:
    def test_a_two_use_token_registers_two_clients_and_refuses_the_third(self, server, developer):
        model = make_model(developer, "invite")
        assert model.registration == "invite"
        created = developer.create_enrollment_token(model.id, uses=2)
        assert (created.federated_model, created.uses, created.used) == (model.id, 2, 0)
        invited = [
            WebClient(model.id, url=server.url, enrollment_token=created.token, progress=False) for _ in range(2)
        ]

        uuids = [client.register() for client in invited]

        assert sorted(developer.get_model(model.id).clients) == sorted(uuids)
        for client in invited:
            pulls_and_pushes(client, model.id)
        third = WebClient(model.id, url=server.url, enrollment_token=created.token, progress=False)
        with pytest.raises(NotFound) as refused:
            third.register()
        with pytest.raises(NotFound) as unknown:
            WebClient(999999, url=server.url, enrollment_token=created.token).register()
        assert (refused.value.status_code, refused.value.body) == (404, unknown.value.body)
        assert refused.value.message == UNKNOWN_MODEL
        [listed] = developer.list_enrollment_tokens(model.id)
        assert (listed.id, listed.uses, listed.used, listed.token) == (created.id, 2, 2, None)

    def test_a_registered_client_registers_again_without_spending_a_use(self, server, developer):
        model = make_model(developer, "invite")
        created = developer.create_enrollment_token(model.id, uses=2)
        client = WebClient(model.id, url=server.url, enrollment_token=created.token, progress=False)

        uuid = client.register()

        assert client.register() == uuid
        assert developer.get_enrollment_token(created.id).used == 1

    def test_no_token_or_a_guessed_one_is_refused(self, server, developer):
        model = make_model(developer, "invite")
        developer.create_enrollment_token(model.id)

        for token in (None, "guessed"):
            with pytest.raises(NotFound) as refused:
                WebClient(model.id, url=server.url, enrollment_token=token).register()
            assert refused.value.message == UNKNOWN_MODEL
        assert developer.get_model(model.id).clients == []

    def test_a_revoked_token_registers_nobody(self, server, developer):
        model = make_model(developer, "invite")
        created = developer.create_enrollment_token(model.id, uses=5)

        developer.revoke_enrollment_token(created.id)

        with pytest.raises(NotFound):
            WebClient(model.id, url=server.url, enrollment_token=created.token).register()
        assert developer.list_enrollment_tokens(model.id) == []
        with pytest.raises(NotFound):
            developer.get_enrollment_token(created.id)

    @pytest.mark.parametrize(
        "expires_at",
        [datetime.now(UTC) + timedelta(hours=1), datetime.now() + timedelta(hours=1)],
        ids=["aware", "naive-local"],
    )
    def test_the_expiry_is_the_instant_given(self, developer, expires_at):
        model = make_model(developer, "invite")

        created = developer.create_enrollment_token(model.id, expires_at=expires_at)

        assert created.expires_at == expires_at.astimezone()

    def test_the_default_expiry_is_the_services_and_a_past_one_is_400(self, developer):
        model = make_model(developer, "invite")

        created = developer.create_enrollment_token(model.id)
        with pytest.raises(BadRequest) as refused:
            developer.create_enrollment_token(model.id, expires_at=datetime.now(UTC) - timedelta(minutes=1))

        days = (created.expires_at - datetime.now(UTC)) / timedelta(days=1)
        assert 6.9 < days <= 7
        assert refused.value.body == {"expires_at": ["must be in the future"]}


class TestClosedModel:
    def test_a_client_the_developer_adds_pulls_and_pushes(self, server, developer):
        model = make_model(developer, "closed")

        uuid = developer.add_client(model.id)

        assert developer.get_model(model.id).clients == [uuid]
        client = WebClient(model.id, uuid=uuid, url=server.url, progress=False)
        pulls_and_pushes(client, model.id)
        assert client.register() == uuid, "an added client is registered already"
        with pytest.raises(NotFound) as refused:
            WebClient(model.id, url=server.url).register()
        assert refused.value.message == UNKNOWN_MODEL

    def test_on_a_signed_model_the_developer_adds_the_clients_public_key(self, server, developer, tmp_path):
        model = make_model(developer, "closed", client_auth="signed")
        key_file = tmp_path / "client.pem"
        public_key = WebClient(model.id, url=server.url, key_file=key_file).public_key

        with pytest.raises(BadRequest) as keyless:
            developer.add_client(model.id)
        uuid = developer.add_client(model.id, public_key=public_key)

        assert "public_key" in keyless.value.body
        assert developer.get_model(model.id).clients == [client_public_id(uuid)]
        client = WebClient(model.id, uuid=uuid, url=server.url, key_file=key_file, progress=False)
        pulls_and_pushes(client, model.id)

    def test_a_key_object_is_taken_too(self, developer):
        model = make_model(developer, "closed", client_auth="signed")
        key = signing.generate_key()

        uuid = developer.add_client(model.id, public_key=key.public_key())

        assert developer.get_model(model.id).clients == [client_public_id(uuid)]


class TestSignedInviteModel:
    def test_a_keyed_client_registers_with_its_key_and_the_token(self, server, developer, tmp_path):
        model = make_model(developer, "invite", client_auth="signed")
        created = developer.create_enrollment_token(model.id)

        # A keyless client is told to bring its key, and the token's only use is not spent on it.
        with pytest.raises(BadRequest) as keyless:
            WebClient(model.id, url=server.url, enrollment_token=created.token).register()
        client = WebClient(
            model.id, url=server.url, key_file=tmp_path / "k.pem", enrollment_token=created.token, progress=False
        )
        client.register()

        assert "public_key" in keyless.value.body
        assert developer.get_model(model.id).clients == [client_public_id(client.uuid)]
        pulls_and_pushes(client, model.id)
        assert client.register() == client.uuid, "a known client re-registers by signing"
        with pytest.raises(NotFound):
            WebClient(
                model.id, url=server.url, private_key=signing.generate_key(), enrollment_token=created.token
            ).register()
