"""``/api/v1/client_aggregate_scores/``: one score per (aggregate, client), schema validation and scoping."""

from __future__ import annotations

import pytest
from rest_framework import status

from fma_django_connectors import services
from fma_django_connectors.models import ClientAggregateScore, FederatedModel

from .conftest import make_aggregate, make_model, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

SCORES = "/api/v1/client_aggregate_scores/"
NO_SCORE = {"detail": "No ClientAggregateScore matches the given query."}


@pytest.fixture
def aggregate(model):
    return make_aggregate(model, [1.0, 2.0])


def post(api, body):
    return api.post(SCORES, body, format="json")


class TestCreate:
    def test_client_scores_with_uuid_from_header(self, fed_client_api, fed_client, aggregate, model):
        # Clients may also send federated_model and client; the client comes from CLIENT-UUID.
        stranger = services.client_register(model=model)
        response = post(
            fed_client_api,
            {
                "aggregate": aggregate.pk,
                "federated_model": model.pk,
                "client": str(stranger.uuid),
                "validation_results": {"accuracy": 0.93, "loss": [0.2, 0.1]},
            },
        )
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert body == {
            "id": body["id"],
            "aggregate": aggregate.pk,
            "client": str(fed_client.uuid),
            "validation_results": {"accuracy": 0.93, "loss": [0.2, 0.1]},
            "created_on": body["created_on"],
        }

    def test_developer_names_the_client(self, developer_api, fed_client, aggregate):
        response = post(
            developer_api, {"aggregate": aggregate.pk, "client": str(fed_client.uuid), "validation_results": {}}
        )
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["client"] == str(fed_client.uuid)

    def test_second_score_for_the_same_pair_is_400(self, fed_client_api, fed_client, aggregate):
        assert post(fed_client_api, {"aggregate": aggregate.pk, "validation_results": {"a": 1}}).status_code == 201
        response = post(fed_client_api, {"aggregate": aggregate.pk, "validation_results": {"a": 2}})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"detail": f"Client {fed_client.uuid} has already scored aggregate {aggregate.pk}."}
        assert ClientAggregateScore.objects.count() == 1

    def test_results_must_match_the_models_schema(self, developer, fed_client):
        model = make_model(developer, client_agg_results_schema={"type": "object", "required": ["accuracy"]})
        model.clients.add(fed_client)
        aggregate = make_aggregate(model, [1])
        response = post(uuid_client(fed_client), {"aggregate": aggregate.pk, "validation_results": {"loss": 1}})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        message = "validation_results did not match the required schema: 'accuracy' is a required property"
        assert response.json() == {"validation_results": message}
        assert not ClientAggregateScore.objects.exists()

    def test_invalid_stored_schema_is_400_not_500(self, fed_client_api, fed_client, model, aggregate):
        # The API refuses such schemas; the admin writes the column as it is.
        FederatedModel.objects.filter(pk=model.pk).update(client_agg_results_schema={"required": "accuracy"})
        response = post(fed_client_api, {"aggregate": aggregate.pk, "validation_results": {"loss": 1}})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "validation_results": "the model's schema for validation_results cannot be used: "
            "not a valid JSON Schema: 'accuracy' is not of type 'array'"
        }
        assert not ClientAggregateScore.objects.exists()

    # It used to answer 403 "Client ... is not registered to model N.", confirming the aggregate's model.
    def test_aggregate_of_an_unregistered_model_answers_as_an_unknown_id(self, fed_client_api, fed_client, other_model):
        foreign = make_aggregate(other_model, [1])
        response = post(fed_client_api, {"aggregate": foreign.pk, "validation_results": {}})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"aggregate": [f'Invalid pk "{foreign.pk}" - object does not exist.']}

    def test_another_developers_aggregate_does_not_exist(self, developer_api, fed_client, other_model):
        foreign = make_aggregate(other_model, [1])
        response = post(
            developer_api, {"aggregate": foreign.pk, "client": str(fed_client.uuid), "validation_results": {}}
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"aggregate": [f'Invalid pk "{foreign.pk}" - object does not exist.']}

    def test_missing_fields(self, fed_client_api):
        response = post(fed_client_api, {})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "aggregate": ["This field is required."],
            "validation_results": ["This field is required."],
        }

    def test_scores_cannot_be_changed(self, developer_api, fed_client, aggregate):
        score = services.score_create(aggregate=aggregate, client=fed_client, validation_results={})
        response = developer_api.delete(f"{SCORES}{score.pk}/")
        assert response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED
        assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


class TestScope:
    @pytest.fixture
    def scores(self, model, other_model, fed_client, aggregate):
        other_model.clients.add(fed_client)
        stranger = services.client_register(model=model)
        foreign = make_aggregate(other_model, [1])
        return {
            "own": services.score_create(aggregate=aggregate, client=fed_client, validation_results={"a": 1}),
            "stranger": services.score_create(aggregate=aggregate, client=stranger, validation_results={"a": 2}),
            "own_foreign": services.score_create(aggregate=foreign, client=fed_client, validation_results={"a": 3}),
        }

    def test_client_sees_its_own(self, fed_client_api, scores):
        assert [item["id"] for item in fed_client_api.get(SCORES).json()] == [
            scores["own_foreign"].pk,
            scores["own"].pk,
        ]
        response = fed_client_api.get(f"{SCORES}{scores['stranger'].pk}/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_SCORE

    def test_developer_sees_those_of_its_models(self, developer_api, scores):
        assert [item["id"] for item in developer_api.get(SCORES).json()] == [scores["stranger"].pk, scores["own"].pk]
        assert developer_api.get(f"{SCORES}{scores['own_foreign'].pk}/").status_code == status.HTTP_404_NOT_FOUND

    def test_staff_sees_all_and_filters(self, staff_api, scores, fed_client, aggregate):
        assert len(staff_api.get(SCORES).json()) == 3
        by_client = staff_api.get(SCORES, {"client": str(fed_client.uuid)}).json()
        assert {item["id"] for item in by_client} == {scores["own"].pk, scores["own_foreign"].pk}
        by_aggregate = staff_api.get(SCORES, {"aggregate": aggregate.pk}).json()
        assert {item["id"] for item in by_aggregate} == {scores["own"].pk, scores["stranger"].pk}
        response = staff_api.get(SCORES, {"client": "nope"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"client": ["Enter a valid UUID."]}

    def test_aggregate_filter_takes_whole_numbers_in_any_range(self, staff_api, scores, aggregate):
        response = staff_api.get(SCORES, {"aggregate": f"{aggregate.pk}.5"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"aggregate": ["Enter a whole number."]}
        response = staff_api.get(SCORES, {"aggregate": "99999999999999999999999"})
        assert response.status_code == status.HTTP_200_OK
        assert response.json() == []
