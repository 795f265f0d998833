"""Registration a developer controls: ``open``, ``invite`` (enrollment tokens) and ``closed`` models."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import status

from fma_django_connectors import services
from fma_django_connectors.access.enrollment import enrollment_token_create
from fma_django_connectors.models import Client, EnrollmentToken

from .conftest import FORBIDDEN, NOT_FOUND, make_model, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

TOKENS = "/api/v1/enrollment_tokens/"


def register(api, model_id, **body):
    return api.post(f"/api/v1/models/{model_id}/register_client/", body, format="json")


@pytest.fixture
def invite_model(developer):
    return make_model(developer, name="invited", registration="invite")


@pytest.fixture
def closed_model(developer):
    return make_model(developer, name="closed", registration="closed")


class TestDefaults:
    def test_a_new_model_is_open_and_uuid(self, developer_api):
        response = developer_api.post(
            "/api/v1/models/", {"name": "m", "aggregator": "avg_values_if_data"}, format="json"
        )
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["registration"] == "open"
        assert response.json()["client_auth"] == "uuid"

    def test_anyone_registers_to_an_open_model(self, anonymous_api, model):
        assert register(anonymous_api, model.pk).status_code == status.HTTP_200_OK

    def test_an_unknown_registration_rule_is_400(self, developer_api, model):
        response = developer_api.patch(f"/api/v1/models/{model.pk}/", {"registration": "maybe"}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"registration": ['"maybe" is not a valid choice.']}


class TestRefusalLooksLikeAnUnknownModel:
    """Anyone registered to any model id, ids being sequential: a refusal must not tell a model exists."""

    @pytest.mark.parametrize("body", [{}, {"enrollment_token": "guessed"}])
    def test_invite_model_without_a_valid_token(self, anonymous_api, invite_model, body):
        refused = register(anonymous_api, invite_model.pk, **body)
        unknown = register(anonymous_api, 999999, **body)
        assert refused.status_code == unknown.status_code == status.HTTP_404_NOT_FOUND
        assert refused.json() == unknown.json() == NOT_FOUND
        assert not invite_model.clients.exists()
        assert not Client.objects.exists()

    def test_closed_model(self, anonymous_api, closed_model):
        refused = register(anonymous_api, closed_model.pk)
        assert refused.status_code == status.HTTP_404_NOT_FOUND
        assert refused.json() == register(anonymous_api, 999999).json()
        assert not Client.objects.exists()

    def test_a_known_client_cannot_join_a_closed_model(self, closed_model, other_model):
        stranger = services.client_register(model=other_model)
        response = register(uuid_client(stranger), closed_model.pk)
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert not closed_model.clients.exists()


class TestInvite:
    def create_token(self, api, model, **fields):
        response = api.post(TOKENS, {"federated_model": model.pk, **fields}, format="json")
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        return response.json()

    def test_the_token_registers_once_and_is_stored_hashed(self, developer_api, anonymous_api, invite_model):
        created = self.create_token(developer_api, invite_model)
        assert created["uses"] == 1
        assert created["used"] == 0
        stored = EnrollmentToken.objects.get()
        assert stored.token_hash == hashlib.sha256(created["token"].encode()).hexdigest()
        assert created["token"] not in str(EnrollmentToken.objects.values_list())

        first = register(anonymous_api, invite_model.pk, enrollment_token=created["token"])
        assert first.status_code == status.HTTP_200_OK
        assert list(invite_model.clients.values_list("uuid", flat=True)) == [Client.objects.get().uuid]

        # Reuse past its limit: refused, as an unknown model.
        second = register(anonymous_api, invite_model.pk, enrollment_token=created["token"])
        assert second.status_code == status.HTTP_404_NOT_FOUND
        assert second.json() == NOT_FOUND
        assert invite_model.clients.count() == 1

    def test_the_list_is_paged_like_every_list(self, developer_api, invite_model):
        made = [self.create_token(developer_api, invite_model)["id"] for _ in range(3)]

        pages = [developer_api.get(TOKENS, {"page_size": 2, "page": page}) for page in (1, 2, 3)]

        assert [[row["id"] for row in page.json()] for page in pages[:2]] == [made[:0:-1], made[:1]]
        assert pages[2].status_code == status.HTTP_404_NOT_FOUND

    def test_an_n_use_token(self, developer_api, anonymous_api, invite_model):
        key = self.create_token(developer_api, invite_model, uses=3)["token"]
        answers = [register(anonymous_api, invite_model.pk, enrollment_token=key).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 404]
        assert invite_model.clients.count() == 3
        listed = developer_api.get(TOKENS).json()
        assert [(item["uses"], item["used"], item["token"]) for item in listed] == [(3, 3, None)]

    def test_a_registered_client_registers_again_without_a_token(self, developer_api, anonymous_api, invite_model):
        key = self.create_token(developer_api, invite_model)["token"]
        uuid = register(anonymous_api, invite_model.pk, enrollment_token=key).json()["uuid"]
        again = register(uuid_client(Client.objects.get(uuid=uuid)), invite_model.pk)
        assert again.status_code == status.HTTP_200_OK
        assert again.json() == {"uuid": uuid}

    def test_an_expired_token_is_refused(self, anonymous_api, invite_model):
        token, key = enrollment_token_create(model=invite_model, uses=5, expires_at=timezone.now() + timedelta(days=1))
        EnrollmentToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert register(anonymous_api, invite_model.pk, enrollment_token=key).status_code == status.HTTP_404_NOT_FOUND

    def test_a_token_of_another_model_is_refused(self, developer, anonymous_api, invite_model):
        elsewhere = make_model(developer, name="elsewhere", registration="invite")
        _, key = enrollment_token_create(model=elsewhere, uses=5, expires_at=timezone.now() + timedelta(days=1))
        assert register(anonymous_api, invite_model.pk, enrollment_token=key).status_code == status.HTTP_404_NOT_FOUND

    def test_a_revoked_token_is_refused(self, developer_api, anonymous_api, invite_model):
        created = self.create_token(developer_api, invite_model, uses=5)
        assert developer_api.delete(f"{TOKENS}{created['id']}/").status_code == status.HTTP_204_NO_CONTENT
        response = register(anonymous_api, invite_model.pk, enrollment_token=created["token"])
        assert response.status_code == status.HTTP_404_NOT_FOUND

    def test_tokens_of_another_developers_model_do_not_exist(self, other_developer_api, developer_api, invite_model):
        response = other_developer_api.post(TOKENS, {"federated_model": invite_model.pk}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": [f'Invalid pk "{invite_model.pk}" - object does not exist.']}
        created = self.create_token(developer_api, invite_model)
        assert other_developer_api.get(TOKENS).json() == []
        assert other_developer_api.get(f"{TOKENS}{created['id']}/").status_code == status.HTTP_404_NOT_FOUND

    def test_the_model_filter_answers_a_foreign_model_as_an_unknown_one(
        self, other_developer_api, developer_api, invite_model
    ):
        self.create_token(developer_api, invite_model)
        unknown = invite_model.pk + 1000
        foreign = other_developer_api.get(TOKENS, {"federated_model": invite_model.pk})
        missing = other_developer_api.get(TOKENS, {"federated_model": unknown})
        assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json()) == (200, [])
        own = developer_api.get(TOKENS, {"federated_model": invite_model.pk}).json()
        assert [row["federated_model"] for row in own] == [invite_model.pk]
        assert developer_api.get(TOKENS, {"federated_model": unknown}).json() == []
        malformed = developer_api.get(TOKENS, {"federated_model": "x"})
        assert (malformed.status_code, malformed.json()) == (400, {"federated_model": ["Enter a whole number."]})

    def test_clients_cannot_create_tokens(self, fed_client_api, model):
        response = fed_client_api.post(TOKENS, {"federated_model": model.pk}, format="json")
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == FORBIDDEN

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"uses": 0}, {"uses": ["Ensure this value is greater than or equal to 1."]}),
            ({"expires_at": "2001-01-01T00:00:00Z"}, {"expires_at": ["must be in the future"]}),
        ],
    )
    def test_bad_tokens_are_400(self, developer_api, invite_model, fields, expected):
        response = developer_api.post(TOKENS, {"federated_model": invite_model.pk, **fields}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == expected
        assert not EnrollmentToken.objects.exists()


class TestClosed:
    def test_the_developer_adds_a_client_that_then_works(self, developer_api, closed_model):
        response = developer_api.post(f"/api/v1/models/{closed_model.pk}/add_client/")
        assert response.status_code == status.HTTP_201_CREATED
        client = Client.objects.get(uuid=response.json()["uuid"])
        api = uuid_client(client)
        assert register(api, closed_model.pk).status_code == status.HTTP_200_OK
        latest = api.get(f"/api/v1/models/{closed_model.pk}/get_latest_model/")
        assert latest.status_code == status.HTTP_200_OK

    def test_only_the_owner_adds_clients(self, other_developer_api, fed_client_api, closed_model):
        other = other_developer_api.post(f"/api/v1/models/{closed_model.pk}/add_client/")
        assert other.status_code == status.HTTP_404_NOT_FOUND
        assert fed_client_api.post(f"/api/v1/models/{closed_model.pk}/add_client/").status_code == 403
        assert not closed_model.clients.exists()
