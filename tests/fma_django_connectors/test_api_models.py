"""``/api/v1/models/``: scoping, creation rules, filters, ordering, paging and the client-facing actions."""

from __future__ import annotations

import pytest
from rest_framework import status

from fma_django_connectors import services
from fma_django_connectors.aggregation.schedules import ScheduleUnavailableError, schedulers
from fma_django_connectors.models import FederatedModel, ModelArtifact

from .conftest import FORBIDDEN, NOT_FOUND, make_aggregate, make_model, stored_files, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

MODELS = "/api/v1/models/"
# The fields of a model in the API contract (initial_model is write-only), spelled out rather than taken
# from the serializer so that a serializer change that breaks the contract fails here.
MODEL_FIELDS = {
    "id",
    "name",
    "developer",
    "clients",
    "current_artifact",
    "aggregator",
    "aggregator_args",
    "requirement",
    "requirement_args",
    "update_schema",
    "client_agg_results_schema",
    "furthest_base_agg",
    "allow_aggregation",
    # Who may take part (docs/security.md): "open" and "uuid" by default, as before these fields existed.
    "registration",
    "client_auth",
    "update_max_norm",
    "created_on",
    "last_modified",
}


class _UnavailableScheduler:
    """A scheduler whose AWS side is down, as ``schedules`` reports it."""

    def sync(self, *, model_id: int, enabled: bool) -> None:
        raise ScheduleUnavailableError(f"Could not update the aggregation schedule fma/model-{model_id}: down")

    def remove(self, *, model_id: int) -> None:
        raise ScheduleUnavailableError(f"Could not remove the aggregation schedule fma/model-{model_id}: down")


UNAVAILABLE_SCHEDULER = "unavailable (tests)"
if UNAVAILABLE_SCHEDULER not in schedulers:
    schedulers.register(UNAVAILABLE_SCHEDULER)(_UnavailableScheduler())


def detail(model) -> str:
    return f"{MODELS}{model.pk}/"


class TestCreate:
    def test_minimal_model_defaults_to_the_caller(self, developer_api, developer):
        response = developer_api.post(MODELS, {"name": "m", "aggregator": "avg_values_if_data"}, format="json")
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert set(body) == MODEL_FIELDS
        assert body["developer"] == developer.pk
        assert body["clients"] == []
        assert body["current_artifact"] is None
        assert body["requirement"] == ""
        assert body["allow_aggregation"] is False
        assert body["aggregator_args"] is None

    def test_full_model_round_trips(self, developer_api, fed_client):
        sent = {
            "name": "full",
            "aggregator": "fed_trimmed_mean",
            "aggregator_args": {"beta": 0.2},
            "requirement": "require_x_updates",
            "requirement_args": {"num_updates": 3},
            "update_schema": {"type": "array"},
            "client_agg_results_schema": {"type": "object", "required": ["accuracy"]},
            "furthest_base_agg": 2,
            "allow_aggregation": True,
            "clients": [str(fed_client.uuid)],
        }
        response = developer_api.post(MODELS, sent, format="json")
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        body = response.json()
        assert {key: body[key] for key in sent} == sent
        assert developer_api.get(f"{MODELS}{body['id']}/").json() == body

    def test_initial_model_becomes_artifact_1_0_0(self, developer_api):
        weights = [[1, 2, 3], [0.5, -1.25]]
        response = developer_api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data", "initial_model": weights}, format="json"
        )
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert "initial_model" not in body
        artifact = ModelArtifact.objects.get(pk=body["current_artifact"])
        assert artifact.version == "1.0.0"
        current = developer_api.get(f"{MODELS}{body['id']}/get_current_artifact/").json()
        assert current["values"] == weights
        assert current["version"] == "1.0.0"

    def test_staff_may_create_for_another_developer(self, staff_api, developer):
        response = staff_api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data", "developer": developer.pk}, format="json"
        )
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["developer"] == developer.pk

    def test_developer_may_not_create_for_another(self, developer_api, other_developer):
        response = developer_api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data", "developer": other_developer.pk}, format="json"
        )
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == {"detail": "Only staff may name another developer than themselves."}
        assert not FederatedModel.objects.exists()

    @pytest.mark.parametrize(
        ("changes", "field", "message_part"),
        [
            ({"aggregator": "nope"}, "aggregator", "Unknown aggregator 'nope'; registered: "),
            ({"requirement": "nope"}, "requirement", "Unknown requirement 'nope'; registered: "),
            ({"aggregator": "krum", "aggregator_args": {"f": "x"}}, "aggregator_args", "must be an integer"),
            ({"aggregator_args": {"bogus": 1}}, "aggregator_args", "takes no arguments, got 'bogus'"),
            ({"requirement": "require_x_updates"}, "requirement_args", "needs argument 'num_updates'"),
            ({"update_schema": {"type": "no-such-type"}}, "update_schema", "not a valid JSON Schema"),
            ({"client_agg_results_schema": 5}, "client_agg_results_schema", "must be a JSON Schema"),
            ({"furthest_base_agg": 0}, "furthest_base_agg", "greater than or equal to 1"),
            ({"initial_model": [1, "a"]}, "initial_model", "must contain only numbers"),
            ({"initial_model": {"w": 1}}, "initial_model", "non-empty JSON list"),
            ({"clients": ["not-a-uuid"]}, "clients", "“not-a-uuid” is not a valid UUID."),
            ({"name": 5.5, "allow_aggregation": "maybe"}, "allow_aggregation", "Must be a valid boolean."),
        ],
    )
    def test_invalid_fields_are_400_naming_the_problem(self, developer_api, media_root, changes, field, message_part):
        response = developer_api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data", **changes}, format="json"
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        body = response.json()
        assert list(body) == [field]
        assert message_part in body[field][0]
        assert not FederatedModel.objects.exists()
        assert stored_files(media_root) == []

    def test_missing_required_fields(self, developer_api):
        response = developer_api.post(MODELS, {}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"name": ["This field is required."], "aggregator": ["This field is required."]}


class TestScope:
    def test_developer_sees_only_own_models(self, developer_api, model, other_model):
        assert [item["id"] for item in developer_api.get(MODELS).json()] == [model.pk]

    @pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
    def test_another_developers_model_is_404(self, developer_api, other_model, method):
        response = getattr(developer_api, method)(detail(other_model), {"name": "x"}, format="json")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NOT_FOUND
        assert FederatedModel.objects.filter(pk=other_model.pk, name="other").exists()

    @pytest.mark.parametrize(
        ("model_id", "body"),
        [("999999", NOT_FOUND), ("abc", {"detail": "Not found."}), ("1.5", {"detail": "Not found."})],
    )
    def test_unknown_or_malformed_id_is_404(self, developer_api, model, model_id, body):
        response = developer_api.get(f"{MODELS}{model_id}/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == body

    def test_staff_sees_all(self, staff_api, model, other_model):
        assert {item["id"] for item in staff_api.get(MODELS).json()} == {model.pk, other_model.pk}
        assert staff_api.get(detail(other_model)).status_code == status.HTTP_200_OK


class TestChange:
    def test_patch_pauses_and_resumes_aggregation(self, developer_api, model):
        response = developer_api.patch(detail(model), {"allow_aggregation": True}, format="json")
        assert response.status_code == status.HTTP_200_OK
        assert response.json()["allow_aggregation"] is True
        model.refresh_from_db()
        assert model.allow_aggregation is True

    def test_patch_validates_args_against_the_stored_aggregator(self, developer_api, developer):
        model = make_model(developer, aggregator="krum")
        response = developer_api.patch(detail(model), {"aggregator_args": {"f": -1}}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert list(response.json()) == ["aggregator_args"]

    def test_put_replaces_clients(self, developer_api, model, fed_client):
        response = developer_api.put(detail(model), {"name": "renamed", "aggregator": "average_layers"}, format="json")
        assert response.status_code == status.HTTP_200_OK
        assert response.json()["name"] == "renamed"
        assert response.json()["clients"] == [str(fed_client.uuid)]
        response = developer_api.patch(detail(model), {"clients": []}, format="json")
        assert response.json()["clients"] == []

    def test_clients_of_other_developers_models_are_answered_as_unknown(
        self, developer_api, developer, model, fed_client, other_model
    ):
        stranger = services.client_register(model=other_model)
        unknown = "00000000-0000-4000-8000-000000000000"
        answers = [
            developer_api.patch(detail(model), {"clients": [str(fed_client.uuid), name]}, format="json")
            for name in (str(stranger.uuid), unknown)
        ]
        assert [answer.status_code for answer in answers] == [status.HTTP_400_BAD_REQUEST] * 2
        messages = [
            answer.json()["clients"][0].replace(name, "<id>")
            for answer, name in zip(answers, (str(stranger.uuid), unknown), strict=True)
        ]
        assert messages == ['Invalid pk "<id>" - object does not exist.'] * 2
        assert list(model.clients.all()) == [fed_client]
        created = developer_api.post(
            MODELS, {"name": "more", "aggregator": "average_layers", "clients": [str(stranger.uuid)]}, format="json"
        )
        assert created.json() == {"clients": [f'Invalid pk "{stranger.uuid}" - object does not exist.']}
        # A client of one of the developer's models may be added to another of its models.
        second = make_model(developer, name="second")
        response = developer_api.patch(detail(second), {"clients": [str(fed_client.uuid)]}, format="json")
        assert response.json()["clients"] == [str(fed_client.uuid)]

    def test_initial_model_only_on_creation(self, developer_api, model):
        response = developer_api.patch(detail(model), {"initial_model": [1, 2]}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "only be given when creating" in response.json()["initial_model"][0]

    def test_delete_removes_files_after_commit(
        self, developer_api, developer, media_root, django_capture_on_commit_callbacks
    ):
        model = make_model(developer, initial_model=[1.0, 2.0])
        make_aggregate(model, [1.5, 2.5])
        assert len(stored_files(media_root)) == 2
        with django_capture_on_commit_callbacks(execute=True):
            response = developer_api.delete(detail(model))
        assert response.status_code == status.HTTP_204_NO_CONTENT
        assert not FederatedModel.objects.filter(pk=model.pk).exists()
        assert not ModelArtifact.objects.exists()
        assert stored_files(media_root) == []


class TestScheduleFailure:
    """A schedule that cannot be changed rolls the whole model write back, files included."""

    @pytest.fixture(autouse=True)
    def scheduler_down(self, settings):
        settings.FMA_SCHEDULER = UNAVAILABLE_SCHEDULER

    def test_create_leaves_no_row_and_no_file(self, developer_api, media_root):
        response = developer_api.post(
            MODELS, {"name": "m", "aggregator": "avg_values_if_data", "initial_model": [1, 2]}, format="json"
        )
        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        assert response.json()["detail"].startswith("Could not update the aggregation schedule")
        assert not FederatedModel.objects.exists()
        assert not ModelArtifact.objects.exists()
        assert stored_files(media_root) == []

    def test_delete_keeps_the_model_and_its_files(
        self, developer_api, developer, media_root, settings, django_capture_on_commit_callbacks
    ):
        settings.FMA_SCHEDULER = "none"
        model = make_model(developer, initial_model=[1, 2])
        settings.FMA_SCHEDULER = UNAVAILABLE_SCHEDULER
        with django_capture_on_commit_callbacks(execute=True):
            response = developer_api.delete(detail(model))
        assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
        assert FederatedModel.objects.filter(pk=model.pk).exists()
        assert len(stored_files(media_root)) == 1


class TestListing:
    def test_newest_first_and_ordering(self, developer_api, developer):
        models = [make_model(developer, name=f"m{index}") for index in range(3)]
        ids = [model.pk for model in models]
        assert [item["id"] for item in developer_api.get(MODELS).json()] == ids[::-1]
        assert [item["id"] for item in developer_api.get(MODELS, {"ordering": "created_on"}).json()] == ids
        assert [item["id"] for item in developer_api.get(MODELS, {"ordering": "-created_on"}).json()] == ids[::-1]

    def test_filter_allow_aggregation(self, developer_api, developer):
        on = make_model(developer, allow_aggregation=True)
        off = make_model(developer)
        assert [item["id"] for item in developer_api.get(MODELS, {"allow_aggregation": "true"}).json()] == [on.pk]
        assert [item["id"] for item in developer_api.get(MODELS, {"allow_aggregation": "false"}).json()] == [off.pk]

    def test_paging_default_100_max_200_bare_list(self, developer_api, developer):
        FederatedModel.objects.bulk_create(
            FederatedModel(name=f"m{index}", developer=developer, aggregator="avg_values_if_data")
            for index in range(205)
        )
        first = developer_api.get(MODELS)
        assert isinstance(first.json(), list)
        assert len(first.json()) == 100
        assert len(developer_api.get(MODELS, {"page": 3}).json()) == 5
        assert len(developer_api.get(MODELS, {"page_size": 500}).json()) == 200
        assert len(developer_api.get(MODELS, {"page_size": 50, "page": 2}).json()) == 50

    def test_page_past_the_end_is_404_json(self, developer_api, model):
        response = developer_api.get(MODELS, {"page": 9})
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == {"detail": "Invalid page."}


class TestClientActions:
    ACTIONS = ("get_latest_aggregate", "get_current_artifact", "get_latest_model")

    def test_empty_model_answers_empty_objects(self, fed_client_api, model):
        for name in self.ACTIONS:
            response = fed_client_api.get(f"{detail(model)}{name}/")
            assert response.status_code == status.HTTP_200_OK
            assert response.json() == {}

    def test_latest_model_is_the_artifact_before_any_aggregate(self, developer, fed_client):
        model = make_model(developer, initial_model=[[1, 2], [3, 4, 5]])
        model.clients.add(fed_client)
        api = uuid_client(fed_client)
        assert api.get(f"{detail(model)}get_latest_model/").json() == {"values": [[1, 2], [3, 4, 5]], "aggregate": None}

    def test_latest_model_and_aggregate_follow_the_newest_aggregate(self, fed_client_api, model):
        first = make_aggregate(model, [1.0, 2.0])
        second = make_aggregate(model, [3.0, 4.5], parent=first, validation_score=0.75)
        latest = fed_client_api.get(f"{detail(model)}get_latest_model/").json()
        assert latest == {"values": [3.0, 4.5], "aggregate": second.pk}
        aggregate = fed_client_api.get(f"{detail(model)}get_latest_aggregate/").json()
        assert aggregate == {
            "id": second.pk,
            "federated_model": model.pk,
            "parent": first.pk,
            "result": [3.0, 4.5],
            "validation_score": 0.75,
            "created_on": aggregate["created_on"],
        }

    def test_current_artifact_fields(self, developer, developer_api):
        model = make_model(developer, initial_model=[1, 2])
        body = developer_api.get(f"{detail(model)}get_current_artifact/").json()
        assert body == {
            "id": model.current_artifact_id,
            "values": [1, 2],
            "version": "1.0.0",
            "federated_model": model.pk,
            "created_on": body["created_on"],
        }

    def test_unregistered_client_is_403(self, other_model, fed_client_api):
        for name in self.ACTIONS:
            response = fed_client_api.get(f"{detail(other_model)}{name}/")
            assert response.status_code == status.HTTP_403_FORBIDDEN
            assert response.json() == FORBIDDEN

    def test_another_developers_model_is_404(self, developer_api, other_model):
        for name in self.ACTIONS:
            response = developer_api.get(f"{detail(other_model)}{name}/")
            assert response.status_code == status.HTTP_404_NOT_FOUND
            assert response.json() == NOT_FOUND

    def test_staff_reads_any_model(self, staff_api, other_model):
        make_aggregate(other_model, [1])
        assert staff_api.get(f"{detail(other_model)}get_latest_model/").json()["values"] == [1]
