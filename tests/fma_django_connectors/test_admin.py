"""The Django admin: every page loads, and saving or deleting keeps schedules and weights files in step."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client as BrowserClient
from django.utils import timezone
from rest_framework import status

from fma_core import signatures
from fma_core.serialization import parse_weights
from fma_django_connectors import services
from fma_django_connectors.access.enrollment import enrollment_token_create
from fma_django_connectors.models import Client, EnrollmentToken, FederatedModel, ModelArtifact
from fma_django_connectors.storage.weights_storage import weights_save
from tests.schedules_support import schedule_names, schedule_of

from .conftest import PASSWORD, SignedClient, make_aggregate, make_model, stored_files, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

ADMIN = "/admin/fma_django_connectors"


@pytest.fixture
def browser(staff) -> BrowserClient:
    staff.is_superuser = True
    staff.save()
    browser = BrowserClient()
    assert browser.login(username=staff.username, password=PASSWORD)
    return browser


@pytest.fixture
def rows(developer) -> dict:
    """A model with a row of every kind under it; artifact, aggregate and update each with its weights file."""
    model = make_model(developer, initial_model=[1.0, 2.0])
    client = services.client_register(model=model)
    aggregate = make_aggregate(model, [1.5, 2.5])
    update = services.update_create(
        model=model, client=client, weights=parse_weights([1.0, 2.0]), base_aggregate=aggregate
    )
    score = services.score_create(aggregate=aggregate, client=client, validation_results={"accuracy": 0.5})
    token, _ = enrollment_token_create(model=model, uses=1, expires_at=timezone.now() + timedelta(days=1))
    return {
        "enrollmenttoken": token,
        "client": client,
        "federatedmodel": model,
        "modelartifact": model.current_artifact,
        "modelaggregate": aggregate,
        "modelupdate": update,
        "clientaggregatescore": score,
    }


def model_form(**fields) -> dict:
    """The admin's add/change form of a federated model, as a browser posts it."""
    form = {
        "name": "mnist",
        "aggregator": "avg_values_if_data",
        "aggregator_args": "null",
        "requirement": "",
        "requirement_args": "null",
        "update_schema": "null",
        "client_agg_results_schema": "null",
        "furthest_base_agg": "",
        "registration": "open",
        "client_auth": "uuid",
    }
    form.update(fields)
    return form


@pytest.mark.parametrize(
    "name",
    [
        "client",
        "federatedmodel",
        "modelartifact",
        "modelaggregate",
        "modelupdate",
        "clientaggregatescore",
        "enrollmenttoken",
    ],
)
def test_list_add_and_change_pages_load(browser, rows, name):
    assert browser.get(f"{ADMIN}/{name}/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/add/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/{rows[name].pk}/change/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/{rows[name].pk}/delete/").status_code == status.HTTP_200_OK


class TestFederatedModel:
    def test_add_creates_the_schedule(self, browser, scheduler, developer):
        response = browser.post(f"{ADMIN}/federatedmodel/add/", model_form(developer=developer.pk))
        assert response.status_code == status.HTTP_302_FOUND
        model = FederatedModel.objects.get()
        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"

    def test_change_of_allow_aggregation_enables_the_schedule_of_pending_work(self, browser, scheduler, developer):
        model = make_model(developer)
        services.update_create(model=model, client=services.client_register(model=model), weights=parse_weights([1.0]))
        form = model_form(developer=developer.pk, allow_aggregation="on")
        response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/change/", form)
        assert response.status_code == status.HTTP_302_FOUND
        assert schedule_of(scheduler, model.pk)["state"] == "ENABLED"

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"aggregator": "nope"}, "Unknown aggregator &#x27;nope&#x27;; registered: average_layers"),
            ({"aggregator": "krum"}, "krum needs argument &#x27;f&#x27; in aggregator_args"),
            ({"requirement": "require_x_updates"}, "require_x_updates needs argument &#x27;num_updates&#x27;"),
            ({"update_schema": '{"type": 5}'}, "not a valid JSON Schema: 5 is not valid under any of the given"),
            ({"client_agg_results_schema": "[1]"}, "must be a JSON Schema (an object or a boolean)"),
            ({"update_schema": '{"$ref": "http://127.0.0.1:9/s.json"}'}, "is not local: a schema may refer only"),
            ({"client_agg_results_schema": '{"pattern": "(?=a)"}'}, "cannot run in linear time (RE2: "),
        ],
    )
    def test_what_the_api_refuses_the_admin_refuses(self, browser, developer, fields, message):
        response = browser.post(f"{ADMIN}/federatedmodel/add/", model_form(developer=developer.pk, **fields))
        assert response.status_code == status.HTTP_200_OK
        assert message in response.content.decode()
        assert not FederatedModel.objects.exists()

    def test_registration_and_client_auth_are_set(self, browser, developer):
        form = model_form(developer=developer.pk, registration="invite", client_auth="signed")
        response = browser.post(f"{ADMIN}/federatedmodel/add/", form)
        assert response.status_code == status.HTTP_302_FOUND
        model = FederatedModel.objects.get()
        assert (model.registration, model.client_auth) == ("invite", "signed")

    @pytest.mark.parametrize("field", ["registration", "client_auth"])
    def test_an_unknown_rule_is_refused(self, browser, developer, field):
        response = browser.post(f"{ADMIN}/federatedmodel/add/", model_form(developer=developer.pk, **{field: "nope"}))
        assert response.status_code == status.HTTP_200_OK
        assert "Select a valid choice. nope is not one of the available choices." in response.content.decode()
        assert not FederatedModel.objects.exists()

    def test_a_signed_model_with_clients_stays_signed(self, browser, developer):
        model = make_model(developer, client_auth="signed")
        services.client_register(model=model, public_key=_public_key(Ed25519PrivateKey.generate()))
        form = model_form(developer=developer.pk, client_auth="uuid")
        response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/change/", form)
        assert response.status_code == status.HTTP_200_OK
        assert "A signed model with clients stays signed" in response.content.decode()
        model.refresh_from_db()
        assert model.client_auth == "signed"

    @pytest.fixture
    def two_models(self, developer) -> tuple[FederatedModel, FederatedModel, ModelArtifact]:
        """A model, and another one with a second artifact that is not its current one."""
        model = make_model(developer, initial_model=[1.0, 2.0])
        other = make_model(developer, name="other", initial_model=[3.0, 4.0])
        spare = ModelArtifact(federated_model=other, version="spare")
        weights_save(field=spare.values, weights=parse_weights([5.0, 6.0]))
        spare.save()
        return model, other, spare

    def test_current_artifact_choices_are_the_models_own(self, browser, two_models):
        model, _, _ = two_models
        change = browser.get(f"{ADMIN}/federatedmodel/{model.pk}/change/").context["adminform"].form
        assert list(change.fields["current_artifact"].queryset) == [model.current_artifact]
        add = browser.get(f"{ADMIN}/federatedmodel/add/").context["adminform"].form
        assert list(add.fields["current_artifact"].queryset) == []

    def test_current_artifact_of_another_model_is_refused(self, browser, developer, two_models):
        model, _, spare = two_models
        form = model_form(developer=developer.pk, current_artifact=spare.pk)
        response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/change/", form)
        assert response.status_code == status.HTTP_200_OK
        assert "Choose one of this model&#x27;s own artifacts" in response.content.decode()
        model.refresh_from_db()
        assert model.current_artifact.federated_model_id == model.pk

    def test_delete_removes_files_and_schedule(
        self, browser, scheduler, rows, media_root, django_capture_on_commit_callbacks
    ):
        model = rows["federatedmodel"]
        assert schedule_of(scheduler, model.pk)["state"] == "DISABLED"
        assert len(stored_files(media_root)) == 3
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/delete/", {"post": "yes"})
        assert response.status_code == status.HTTP_302_FOUND
        assert not FederatedModel.objects.exists()
        assert stored_files(media_root) == []
        assert schedule_names(scheduler) == []

    def test_bulk_delete_removes_files(self, browser, rows, media_root, django_capture_on_commit_callbacks):
        model = rows["federatedmodel"]
        form = {"action": "delete_selected", "_selected_action": [model.pk], "post": "yes"}
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(f"{ADMIN}/federatedmodel/", form)
        assert response.status_code == status.HTTP_302_FOUND
        assert not FederatedModel.objects.exists()
        assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("name", "owner_of_the_file", "field"),
    [
        ("modelartifact", "modelartifact", "values"),
        ("modelaggregate", "modelaggregate", "result"),
        ("modelupdate", "modelupdate", "data"),
        ("client", "modelupdate", "data"),  # its updates go with it
    ],
)
def test_deleting_a_row_removes_the_weights_files_it_owns(
    browser, rows, media_root, django_capture_on_commit_callbacks, name, owner_of_the_file, field
):
    row = rows[name]
    before = stored_files(media_root)
    file_name = getattr(rows[owner_of_the_file], field).name
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"{ADMIN}/{name}/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == status.HTTP_302_FOUND
    assert not type(row).objects.filter(pk=row.pk).exists()
    assert stored_files(media_root) == [path for path in before if path != file_name]


def _public_key(key: Ed25519PrivateKey) -> bytes:
    return signatures.parse_public_key(signatures.public_key_text(key))


def _register(model, **body):
    return SignedClient(Ed25519PrivateKey.generate()).api.post(
        f"/api/v1/models/{model.pk}/register_client/", body, format="json"
    )


class TestEnrollmentTokens:
    @pytest.fixture
    def invite_model(self, developer):
        return make_model(developer, registration="invite")

    def token_form(self, model, *, uses="2", expires=None) -> dict:
        expires = expires or timezone.localtime() + timedelta(days=1)
        return {
            "federated_model": model.pk,
            "uses": uses,
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": expires.strftime("%H:%M:%S"),
        }

    def test_a_token_made_in_the_admin_admits_as_many_clients_as_it_says(self, browser, invite_model):
        response = browser.post(f"{ADMIN}/enrollmenttoken/add/", self.token_form(invite_model))
        assert response.status_code == status.HTTP_200_OK
        key = re.search(r'<code id="enrollment-token">([^<]+)</code>', response.content.decode()).group(1)
        token = EnrollmentToken.objects.get()
        assert token.token_hash == hashlib.sha256(key.encode()).hexdigest()
        assert (token.uses, token.used) == (2, 0)
        assert _register(invite_model, enrollment_token=key).status_code == status.HTTP_200_OK
        assert _register(invite_model, enrollment_token=key).status_code == status.HTTP_200_OK
        assert _register(invite_model, enrollment_token=key).status_code == status.HTTP_404_NOT_FOUND
        assert invite_model.clients.count() == 2

    def test_the_add_page_proposes_the_apis_default_expiry(self, browser):
        form = browser.get(f"{ADMIN}/enrollmenttoken/add/").context["adminform"].form
        assert timedelta(days=6) < form.initial["expires_at"] - timezone.now() <= timedelta(days=7)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"expires": timezone.localtime() - timedelta(days=1)}, "must be in the future"),
            ({"uses": "0"}, "Ensure this value is greater than or equal to 1."),
            ({"uses": str(2**31)}, "Ensure this value is less than or equal to 2147483647."),
        ],
    )
    def test_what_the_api_refuses_the_admin_refuses(self, browser, invite_model, fields, message):
        response = browser.post(f"{ADMIN}/enrollmenttoken/add/", self.token_form(invite_model, **fields))
        assert response.status_code == status.HTTP_200_OK
        assert message in response.content.decode()
        assert not EnrollmentToken.objects.exists()

    def test_a_token_is_read_and_revoked_but_not_edited(self, browser, invite_model):
        token, key = enrollment_token_create(model=invite_model, uses=1, expires_at=timezone.now() + timedelta(days=1))
        change = f"{ADMIN}/enrollmenttoken/{token.pk}/change/"
        assert browser.get(change).status_code == status.HTTP_200_OK
        assert browser.post(change, self.token_form(invite_model, uses="9")).status_code == status.HTTP_403_FORBIDDEN
        response = browser.post(f"{ADMIN}/enrollmenttoken/{token.pk}/delete/", {"post": "yes"})
        assert response.status_code == status.HTTP_302_FOUND
        assert _register(invite_model, enrollment_token=key).status_code == status.HTTP_404_NOT_FOUND


class TestAddingClients:
    def test_a_client_added_to_a_closed_model_gets_in(self, browser, developer):
        model = make_model(developer, registration="closed", initial_model=[1.0])
        response = browser.post(f"{ADMIN}/client/add/", {"federated_model": model.pk, "public_key": ""})
        assert response.status_code == status.HTTP_302_FOUND
        client = model.clients.get()
        assert client.public_key is None
        assert uuid_client(client).get(f"/api/v1/models/{model.pk}/get_latest_model/").json()["values"] == [1.0]

    def test_a_client_added_to_a_signed_model_signs_with_its_key(self, browser, developer):
        model = make_model(developer, registration="closed", client_auth="signed", initial_model=[1.0])
        key = Ed25519PrivateKey.generate()
        form = {"federated_model": model.pk, "public_key": signatures.public_key_text(key)}
        assert browser.post(f"{ADMIN}/client/add/", form).status_code == status.HTTP_302_FOUND
        client = model.clients.get()
        assert bytes(client.public_key) == _public_key(key)
        signed = SignedClient(key, str(client.uuid)).call("GET", f"/api/v1/models/{model.pk}/get_latest_model/")
        assert signed.status_code == status.HTTP_200_OK

    @pytest.mark.parametrize(
        ("public_key", "message"),
        [
            ("", "This model takes signed requests only: give the client&#x27;s public_key."),
            ("not base64!", "public_key must be base64 of the 32-byte raw Ed25519 public key"),
        ],
    )
    def test_what_add_client_refuses_the_admin_refuses(self, browser, developer, public_key, message):
        model = make_model(developer, registration="closed", client_auth="signed")
        response = browser.post(f"{ADMIN}/client/add/", {"federated_model": model.pk, "public_key": public_key})
        assert response.status_code == status.HTTP_200_OK
        assert message in response.content.decode()
        assert not Client.objects.exists()
