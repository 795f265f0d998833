"""The Django admin: every page loads, and saving or deleting keeps schedules and weights files in step."""

from __future__ import annotations

import boto3
import pytest
from django.test import Client as BrowserClient
from rest_framework import status

from fma_core.serialization import parse_weights
from fma_django_connectors import services
from fma_django_connectors.models import FederatedModel, ModelArtifact
from fma_django_connectors.weights_storage import weights_save

from .conftest import PASSWORD, make_aggregate, make_model, stored_files
from .test_schedules import events, rule_of  # noqa: F401 (events: the moto EventBridge fixture)

pytestmark = pytest.mark.usefixtures("media_root")

ADMIN = "/admin/fma_django_connectors"


@pytest.fixture
def eventbridge(request):
    """moto's EventBridge, where the ``eventbridge`` scheduler keeps the rules."""
    request.getfixturevalue("events")
    return boto3.client("events", region_name="us-east-1")


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
    return {
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
    }
    form.update(fields)
    return form


@pytest.mark.parametrize(
    "name", ["client", "federatedmodel", "modelartifact", "modelaggregate", "modelupdate", "clientaggregatescore"]
)
def test_list_add_and_change_pages_load(browser, rows, name):
    assert browser.get(f"{ADMIN}/{name}/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/add/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/{rows[name].pk}/change/").status_code == status.HTTP_200_OK
    assert browser.get(f"{ADMIN}/{name}/{rows[name].pk}/delete/").status_code == status.HTTP_200_OK


class TestFederatedModel:
    def test_add_creates_the_schedule(self, browser, eventbridge, developer):
        response = browser.post(f"{ADMIN}/federatedmodel/add/", model_form(developer=developer.pk))
        assert response.status_code == status.HTTP_302_FOUND
        model = FederatedModel.objects.get()
        assert rule_of(eventbridge, model.pk)["state"] == "DISABLED"

    def test_change_of_allow_aggregation_enables_the_schedule_of_pending_work(self, browser, eventbridge, developer):
        model = make_model(developer)
        services.update_create(model=model, client=services.client_register(model=model), weights=parse_weights([1.0]))
        form = model_form(developer=developer.pk, allow_aggregation="on")
        response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/change/", form)
        assert response.status_code == status.HTTP_302_FOUND
        assert rule_of(eventbridge, model.pk)["state"] == "ENABLED"

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"aggregator": "nope"}, "Unknown aggregator &#x27;nope&#x27;; registered: average_layers"),
            ({"aggregator": "krum"}, "krum needs argument &#x27;f&#x27; in aggregator_args"),
            ({"requirement": "require_x_updates"}, "require_x_updates needs argument &#x27;num_updates&#x27;"),
            ({"update_schema": '{"type": 5}'}, "not a valid JSON Schema: 5 is not valid under any of the given"),
            ({"client_agg_results_schema": "[1]"}, "must be a JSON Schema (an object or a boolean)"),
        ],
    )
    def test_what_the_api_refuses_the_admin_refuses(self, browser, developer, fields, message):
        response = browser.post(f"{ADMIN}/federatedmodel/add/", model_form(developer=developer.pk, **fields))
        assert response.status_code == status.HTTP_200_OK
        assert message in response.content.decode()
        assert not FederatedModel.objects.exists()

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
        self, browser, eventbridge, rows, media_root, django_capture_on_commit_callbacks
    ):
        model = rows["federatedmodel"]
        assert rule_of(eventbridge, model.pk)["state"] == "DISABLED"
        assert len(stored_files(media_root)) == 3
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(f"{ADMIN}/federatedmodel/{model.pk}/delete/", {"post": "yes"})
        assert response.status_code == status.HTTP_302_FOUND
        assert not FederatedModel.objects.exists()
        assert stored_files(media_root) == []
        assert eventbridge.list_rules(NamePrefix=f"fma-scheduled-{model.pk}")["Rules"] == []

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
