"""``/api/v1/model_updates/``: who may send what, validation of the weights, scoping and nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import status

from fma_core.serialization import Weights, parse_weights
from fma_django_connectors import services
from fma_django_connectors.aggregation import triggers
from fma_django_connectors.exceptions import ApplicationError
from fma_django_connectors.models import FederatedModel, ModelUpdate, ThrottleCount

from .conftest import FORBIDDEN, make_aggregate, make_model, stored_files, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

UPDATES = "/api/v1/model_updates/"
NO_UPDATE = {"detail": "No ModelUpdate matches the given query."}


def post(api, body, **extra):
    return api.post(UPDATES, body, format="json", **extra)


class TestClientCreates:
    def test_created_pending_with_client_from_header(self, fed_client_api, fed_client, model):
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1, 2, 3], "base_aggregate": None})
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert body == {
            "id": body["id"],
            "client": str(fed_client.uuid),
            "federated_model": model.pk,
            "data": [1, 2, 3],
            "status": 0,
            "base_aggregate": None,
            "num_examples": 1,
            "status_reason": "",
            "created_on": body["created_on"],
        }
        assert ModelUpdate.objects.get(pk=body["id"]).status == ModelUpdate.Status.PENDING

    @pytest.mark.parametrize(
        "weights",
        [[1, 2, 3], [0.5, -1e-300, 1e300], [[1, 2], [3, 4]], [[1.5], [2, 3, 4], [[5, 6], [7, 8]]], [[[0.25]]]],
    )
    def test_weights_round_trip_exactly(self, fed_client_api, model, weights):
        created = post(fed_client_api, {"federated_model": model.pk, "data": weights}).json()
        assert created["data"] == weights
        assert fed_client_api.get(f"{UPDATES}{created['id']}/").json()["data"] == weights

    def test_body_client_is_ignored_for_a_client(self, fed_client_api, fed_client, model, other_model):
        stranger = services.client_register(model=model)
        body = post(fed_client_api, {"federated_model": model.pk, "data": [1], "client": str(stranger.uuid)}).json()
        assert body["client"] == str(fed_client.uuid)

    def test_num_examples_is_stored(self, fed_client_api, model):
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1], "num_examples": 32})
        assert response.json()["num_examples"] == 32
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1], "num_examples": 0})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"num_examples": ["Ensure this value is greater than or equal to 1."]}
        # The same bound on SQLite as on PostgreSQL's integer column.
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1], "num_examples": 2**31})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"num_examples": ["Ensure this value is less than or equal to 2147483647."]}

    def test_base_aggregate_of_the_model(self, fed_client_api, model):
        aggregate = make_aggregate(model, [0, 0])
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1, 2], "base_aggregate": aggregate.pk})
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["base_aggregate"] == aggregate.pk

    def test_aggregation_is_requested_after_commit(
        self, fed_client_api, model, django_capture_on_commit_callbacks, monkeypatch
    ):
        requested = []
        monkeypatch.setattr(triggers, "request_aggregation", lambda **kwargs: requested.append(kwargs))
        with django_capture_on_commit_callbacks() as callbacks:
            post(fed_client_api, {"federated_model": model.pk, "data": [1]})
            assert requested == []
        for callback in callbacks:
            callback()
        assert requested == [{"model_id": model.pk}]


class TestDeveloperCreates:
    def test_developer_names_the_client(self, developer_api, fed_client, model):
        response = post(developer_api, {"federated_model": model.pk, "data": [1], "client": str(fed_client.uuid)})
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["client"] == str(fed_client.uuid)
        assert response.json()["applied_aggregate"] is None

    def test_developer_without_client_is_400(self, developer_api, model):
        response = post(developer_api, {"federated_model": model.pk, "data": [1]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"client": ["This field is required."]}

    def test_another_developers_model_does_not_exist(self, developer_api, other_model, fed_client):
        response = post(developer_api, {"federated_model": other_model.pk, "data": [1], "client": str(fed_client.uuid)})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": [f'Invalid pk "{other_model.pk}" - object does not exist.']}

    def test_without_model_weights_the_first_update_sets_the_structure(
        self, fed_client_api, developer_api, model, media_root
    ):
        # Otherwise one update of another shape would make every aggregation of the model fail.
        first = post(fed_client_api, {"federated_model": model.pk, "data": [1.0, 2.0, 3.0]})
        assert first.status_code == status.HTTP_201_CREATED
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1.0, 2.0]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 0 has shape [2] but the model's weights have shape [3]"}
        assert len(stored_files(media_root)) == 1
        # The developer marks the first one invalid: it no longer sets the structure.
        developer_api.patch(f"{UPDATES}{first.json()['id']}/", {"status": 4}, format="json")
        assert (
            post(fed_client_api, {"federated_model": model.pk, "data": [1.0, 2.0]}).status_code
            == status.HTTP_201_CREATED
        )


class TestRejected:
    """Every rejection is a 4xx naming the problem, and leaves neither a row nor a file."""

    @pytest.fixture(autouse=True)
    def nothing_written(self, db, media_root):
        yield
        assert not ModelUpdate.objects.exists()
        assert [name for name in stored_files(media_root) if name.startswith("updates/")] == []

    # A model or aggregate outside the client's registrations answers as an unknown id: the message
    # used to confirm it existed ("... is not registered to model N.", "Aggregate N is not an aggregate of ...").
    def test_unregistered_model_answers_as_an_unknown_id(self, fed_client_api, fed_client, other_model):
        response = post(fed_client_api, {"federated_model": other_model.pk, "data": [1]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": [f'Invalid pk "{other_model.pk}" - object does not exist.']}

    def test_base_aggregate_of_an_unregistered_model_answers_as_an_unknown_id(self, fed_client_api, model, other_model):
        foreign = make_aggregate(other_model, [1])
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1], "base_aggregate": foreign.pk})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"base_aggregate": [f'Invalid pk "{foreign.pk}" - object does not exist.']}

    def test_unknown_ids_are_400(self, fed_client_api):
        response = post(fed_client_api, {"federated_model": 999999, "data": [1], "base_aggregate": 999999})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "federated_model": ['Invalid pk "999999" - object does not exist.'],
            "base_aggregate": ['Invalid pk "999999" - object does not exist.'],
        }

    def test_wrong_types_are_400(self, fed_client_api, model):
        response = post(fed_client_api, {"federated_model": "abc", "data": [1], "num_examples": "many"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "federated_model": ["Incorrect type. Expected pk value, received str."],
            "num_examples": ["A valid integer is required."],
        }

    def test_schema_mismatch_has_the_contract_body(self, fed_client_api, fed_client, developer):
        model = make_model(developer, update_schema={"type": "array", "maxItems": 2})
        model.clients.add(fed_client)
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1, 2, 3]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "data did not match the required schema: [1, 2, 3] is too long"}

    def test_unusable_model_schema_is_400_not_500(self, fed_client_api, fed_client, developer):
        model = make_model(developer, update_schema={"$ref": "#/definitions/missing"})
        model.clients.add(fed_client)
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["data"].startswith("the model's schema for data cannot be used: ")

    @pytest.mark.parametrize(
        ("schema", "problem"),
        [
            ({"type": 5}, "5 is not valid under any of the given schemas"),
            ([1], "[1] is not of type 'object', 'boolean'"),
            ({"pattern": "(("}, "'((' is not a 'regex'"),
        ],
    )
    def test_invalid_stored_schema_is_400_not_500(self, fed_client_api, fed_client, model, media_root, schema, problem):
        # The API refuses such schemas; the admin writes the column as it is.
        FederatedModel.objects.filter(pk=model.pk).update(update_schema=schema)
        response = post(fed_client_api, {"federated_model": model.pk, "data": [1]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "data": f"the model's schema for data cannot be used: not a valid JSON Schema: {problem}"
        }
        assert stored_files(media_root) == []

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ([1, "2"], "weights must contain only numbers"),
            ([], "weights must be a non-empty JSON list of numbers or of layers"),
            ({"w": [1]}, "weights must be a non-empty JSON list of numbers or of layers"),
            ([[1, 2], [3, "x"]], "layer 1 must contain only numbers"),
            ([1, None], "weights must contain only numbers"),
            ([True, False], "weights must contain only numbers"),
        ],
    )
    def test_invalid_weights_are_400(self, fed_client_api, model, data, message):
        response = post(fed_client_api, {"federated_model": model.pk, "data": data})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": [message]}

    def test_missing_data_is_400(self, fed_client_api, model):
        response = post(fed_client_api, {"federated_model": model.pk})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": ["This field is required."]}

    @pytest.mark.parametrize(
        ("literal", "message"),
        [
            (b"NaN", "NaN and Infinity are not valid JSON numbers: line 1 column 43 (char 42)"),
            (b"Infinity", "NaN and Infinity are not valid JSON numbers: line 1 column 43 (char 42)"),
            (b"-Infinity", "NaN and Infinity are not valid JSON numbers: line 1 column 43 (char 42)"),
            (b"1e400", "number is infinity when parsed as double: line 1 column 43 (char 42)"),
        ],
    )
    def test_nan_and_infinity_are_400(self, fed_client_api, model, literal, message):
        body = b'{"federated_model": %6d, "data": [1.0, %s]}' % (model.pk, literal)
        response = fed_client_api.post(UPDATES, body, content_type="application/json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"detail": f"JSON parse error - {message}"}

    def test_structure_must_match_the_latest_aggregate(self, fed_client_api, model):
        make_aggregate(model, [[1.0, 2.0], [3.0, 4.0, 5.0]])
        response = post(fed_client_api, {"federated_model": model.pk, "data": [[1.0, 2.0], [3.0, 4.0, 5.0, 6.0]]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 1 has shape [4] but the model's weights have shape [3]"}

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            # Rows of equal length parse as one array; against layers of differing shapes they are layers.
            ([[1.0, 2.0], [3.0, 4.0]], "layer 1 has shape [2] but the model's weights have shape [3]"),
            ([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], "layer 0 has shape [3] but the model's weights have shape [2]"),
            ([1.0, 2.0], "data has 1 layer but the model's weights have 2 layers: layer 1 (shape [3]) is missing"),
            (
                [[1.0, 2.0], [3.0, 4.0, 5.0], [6.0]],
                "data has 3 layers but the model's weights have 2 layers: "
                "layer 2 (shape [1]) is not in the model's weights",
            ),
            ([[[1.0, 2.0]]], "layer 0 has shape [1, 2] but the model's weights have shape [2]"),
        ],
    )
    def test_structure_mismatch_names_the_layer_and_both_shapes(self, fed_client_api, model, media_root, data, message):
        make_aggregate(model, [[1.0, 2.0], [3.0, 4.0, 5.0]])
        before = stored_files(media_root)
        response = post(fed_client_api, {"federated_model": model.pk, "data": data})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": message}
        assert stored_files(media_root) == before
        assert not ModelUpdate.objects.exists()

    def test_missing_layer_is_named(self, developer, fed_client):
        model = make_model(developer, initial_model=[[1, 2], [3, 4, 5], [6]])
        model.clients.add(fed_client)
        response = post(uuid_client(fed_client), {"federated_model": model.pk, "data": [[1, 2], [3, 4, 5]]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "data": "data has 2 layers but the model's weights have 3 layers: layer 2 (shape [1]) is missing"
        }

    def test_single_array_model_against_layers(self, developer, fed_client):
        model = make_model(developer, initial_model=[[1, 2], [3, 4]])
        model.clients.add(fed_client)
        response = post(uuid_client(fed_client), {"federated_model": model.pk, "data": [[1, 2], [3, 4, 5]]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 1 has shape [3] but the model's weights have shape [2]"}

    def test_structure_must_match_the_current_artifact(self, developer, fed_client):
        model = make_model(developer, initial_model=[[1, 2], [3, 4]])
        model.clients.add(fed_client)
        response = post(uuid_client(fed_client), {"federated_model": model.pk, "data": [[1, 2], [3, 4], [5, 6]]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 0 has shape [3, 2] but the model's weights have shape [2, 2]"}

    def test_malformed_json_is_400(self, fed_client_api):
        response = fed_client_api.post(UPDATES, b'{"federated_model": ', content_type="application/json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["detail"].startswith("JSON parse error - ")

    def test_non_json_body_is_415(self, fed_client_api, model):
        response = fed_client_api.post(UPDATES, "data=1", content_type="text/plain")
        assert response.status_code == status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
        assert response.json() == {"detail": 'Unsupported media type "text/plain" in request.'}

    def test_over_large_body_is_413_json(self, fed_client_api, model, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        body = b'{"federated_model": %d, "data": [%s]}' % (model.pk, b", ".join([b"1.5"] * 400))
        response = fed_client_api.post(UPDATES, body, content_type="application/json")
        assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        assert response.json() == {"detail": "Request body is larger than 1000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."}

    def test_row_refused_after_the_file_was_written_removes_the_file(self, fed_client, model):
        # The row is validated after its file was written: a refused row must take the file with it.
        with pytest.raises(ValidationError, match="num_examples"):
            services.update_create(model=model, client=fed_client, weights=parse_weights([1.0]), num_examples=0)


class TestScope:
    @pytest.fixture
    def updates(self, model, other_model, fed_client):
        other_model.clients.add(fed_client)
        stranger = services.client_register(model=model)
        return {
            "own": services.update_create(model=model, client=fed_client, weights=parse_weights([1.0])),
            "own_other_model": services.update_create(
                model=other_model, client=fed_client, weights=parse_weights([2.0])
            ),
            "stranger": services.update_create(model=model, client=stranger, weights=parse_weights([3.0])),
        }

    def test_client_sees_only_its_own_without_applied_aggregate(self, fed_client_api, updates):
        body = fed_client_api.get(UPDATES).json()
        assert [item["id"] for item in body] == [updates["own_other_model"].pk, updates["own"].pk]
        assert all("applied_aggregate" not in item for item in body)
        response = fed_client_api.get(f"{UPDATES}{updates['stranger'].pk}/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_UPDATE

    def test_developer_sees_those_of_its_models(self, developer_api, other_developer_api, updates):
        assert [item["id"] for item in developer_api.get(UPDATES).json()] == [
            updates["stranger"].pk,
            updates["own"].pk,
        ]
        assert [item["id"] for item in other_developer_api.get(UPDATES).json()] == [updates["own_other_model"].pk]
        response = other_developer_api.get(f"{UPDATES}{updates['own'].pk}/")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_UPDATE

    def test_staff_sees_all(self, staff_api, updates):
        assert len(staff_api.get(UPDATES).json()) == 3

    def test_filters(self, developer_api, updates, model, other_model):
        updates["own"].status = ModelUpdate.Status.COMPLETE
        updates["own"].save()
        assert [item["id"] for item in developer_api.get(UPDATES, {"status": 2}).json()] == [updates["own"].pk]
        assert developer_api.get(UPDATES, {"federated_model": other_model.pk}).json() == []
        assert len(developer_api.get(UPDATES, {"federated_model": model.pk}).json()) == 2
        response = developer_api.get(UPDATES, {"status": 9})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"status": ["Select a valid choice. 9 is not one of the available choices."]}

    def test_filter_ids_are_whole_numbers_in_any_range(self, developer_api, updates, model):
        response = developer_api.get(UPDATES, {"federated_model": f"{model.pk}.5"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": ["Enter a whole number."]}
        response = developer_api.get(UPDATES, {"federated_model": "99999999999999999999999"})
        assert response.status_code == status.HTTP_200_OK
        assert response.json() == []

    def test_paging_default_10_max_20(self, developer_api, model, fed_client):
        for value in range(25):
            services.update_create(model=model, client=fed_client, weights=parse_weights([float(value)]))
        assert len(developer_api.get(UPDATES).json()) == 10
        assert len(developer_api.get(UPDATES, {"page_size": 50}).json()) == 20
        assert len(developer_api.get(UPDATES, {"page": 3}).json()) == 5


class TestChange:
    @pytest.fixture
    def update(self, model, fed_client):
        return services.update_create(model=model, client=fed_client, weights=parse_weights([1.0, 2.0]))

    @pytest.mark.parametrize("method", ["put", "patch", "delete"])
    def test_clients_may_not_change_updates(self, fed_client_api, update, method):
        response = getattr(fed_client_api, method)(f"{UPDATES}{update.pk}/", {"status": 4}, format="json")
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == FORBIDDEN

    def test_developer_sets_status_only(self, developer_api, update):
        response = developer_api.patch(f"{UPDATES}{update.pk}/", {"status": 4, "data": [9.0, 9.0]}, format="json")
        assert response.status_code == status.HTTP_200_OK
        assert response.json()["status"] == 4
        assert response.json()["data"] == [1.0, 2.0]

    def test_other_developer_gets_404(self, other_developer_api, update):
        response = other_developer_api.patch(f"{UPDATES}{update.pk}/", {"status": 4}, format="json")
        assert response.status_code == status.HTTP_404_NOT_FOUND
        assert response.json() == NO_UPDATE

    def test_delete_removes_the_file_after_commit(
        self, developer_api, update, media_root, django_capture_on_commit_callbacks
    ):
        assert len(stored_files(media_root)) == 1
        with django_capture_on_commit_callbacks(execute=True):
            response = developer_api.delete(f"{UPDATES}{update.pk}/")
        assert response.status_code == status.HTTP_204_NO_CONTENT
        assert stored_files(media_root) == []


# Without the test's enclosing transaction, as in production: a transaction of the service is then
# BEGIN/COMMIT (not counted as queries) instead of SAVEPOINT/RELEASE.
@pytest.mark.django_db(transaction=True)
class TestIngestReadsNoWeights:
    """A JSON update is checked against the structure on the model's row: no weights file is opened."""

    @pytest.fixture
    def model_without_files(self, developer, fed_client, media_root):
        model = make_model(developer, initial_model=[[0.5] * 9_990, [0.5] * 10])
        model.clients.add(fed_client)
        make_aggregate(model, [[0.25] * 9_990, [0.25] * 10])
        services.update_create(model=model, client=fed_client, weights=parse_weights([[1.0] * 9_990, [1.0] * 10]))
        # The model's weights (artifact, aggregate, an earlier update) are gone from disk: reading any fails.
        for path in media_root.rglob("*"):
            if path.is_file():
                path.unlink()
        return model

    def test_a_10k_update_takes_at_most_5_queries_and_no_file(self, fed_client_api, model_without_files, media_root):
        body = {"federated_model": model_without_files.pk, "data": [[float(i) for i in range(9_990)], [0.5] * 10]}
        with CaptureQueriesContext(connection) as queries:
            response = post(fed_client_api, body)
        # The ingest's own statements: the client throttle's count (docs/security.md) costs one more per request
        # whatever the route, and is left out here.
        ingest = [
            query["sql"]
            for query in queries.captured_queries
            if ThrottleCount._meta.db_table not in query["sql"] and query["sql"].split()[0] not in {"BEGIN", "COMMIT"}
        ]
        assert len(ingest) <= 5, "\n".join(ingest)
        assert response.status_code == status.HTTP_201_CREATED
        assert len(stored_files(media_root)) == 1

    def test_a_mismatch_is_found_without_a_file(self, fed_client_api, model_without_files):
        body = {"federated_model": model_without_files.pk, "data": [[1.0] * 9_990, [1.0] * 11]}
        response = post(fed_client_api, body)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 1 has shape [11] but the model's weights have shape [10]"}


class TestStructure:
    def test_the_update_row_keeps_its_structure_and_the_first_sets_the_models(self, fed_client_api, model):
        body = post(fed_client_api, {"federated_model": model.pk, "data": [[1, 2], [0.5, 1.5, 2.5]]}).json()

        update = ModelUpdate.objects.get(pk=body["id"])
        expected = {
            "layered": True,
            "tensors": [{"name": "0", "shape": [2], "dtype": "int64"}, {"name": "1", "shape": [3], "dtype": "float64"}],
        }
        assert (update.structure, update.parameter_count, update.byte_size) == (expected, 5, 40)
        model.refresh_from_db()
        assert model.structure == expected

    def test_binary_weights_must_have_the_models_dtypes(self, developer, fed_client, media_root):
        float32 = Weights(layers=(np.zeros(3, np.float32),), layered=True, names=("fc.bias",))
        model = services.model_create(developer=developer, name="m", aggregator="fed_avg", initial_model=float32)
        model.clients.add(fed_client)
        before = stored_files(media_root)
        float64 = Weights(layers=(np.zeros(3),), layered=True, names=("fc.bias",))

        with pytest.raises(ApplicationError) as error:
            services.update_create(model=model, client=fed_client, weights=float64, check_dtypes=True)

        assert error.value.body == {
            "data": "tensor 'fc.bias' has dtype float64 but the model's weights have dtype float32"
        }
        assert stored_files(media_root) == before
        update = services.update_create(model=model, client=fed_client, weights=float32, check_dtypes=True)
        assert update.structure == float32.structure.to_json()

    def test_json_layers_take_the_names_of_a_named_models_tensors(self, developer, fed_client):
        named = Weights(layers=(np.zeros((2, 2), np.float32), np.zeros(2, np.float32)), layered=True, names=("w", "b"))
        model = services.model_create(developer=developer, name="m", aggregator="fed_avg", initial_model=named)
        model.clients.add(fed_client)
        api = uuid_client(fed_client)

        response = post(api, {"federated_model": model.pk, "data": [[[1, 2], [3, 4]], [5, 6, 7]]})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "tensor 'b' has shape [3] but the model's weights have shape [2]"}

        body = post(api, {"federated_model": model.pk, "data": [[[1, 2], [3, 4]], [5, 6]]}).json()
        assert body["data"] == [[[1, 2], [3, 4]], [5, 6]]
        assert [tensor["name"] for tensor in ModelUpdate.objects.get(pk=body["id"]).structure["tensors"]] == ["w", "b"]
