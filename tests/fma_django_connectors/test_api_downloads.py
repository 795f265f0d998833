"""Weights out: lists carry URLs, the weights routes answer ``?format=``, nothing exceeds a Lambda response.

Inline answers come through the API; answers too large for a response are a 303 to a signed download URL
of the storage (the local backend here: its grant is read as the local server would).
"""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
import safetensors.numpy
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework import status

from fma_django_connectors import services
from fma_django_connectors.models import ModelUpdate, Upload
from fma_django_connectors.storage import transfers

from .conftest import make_aggregate, make_model, stored_files

pytestmark = pytest.mark.usefixtures("media_root")

BASE = "http://testserver"
MODELS = "/api/v1/models/"
# A response limit (FMA_RESPONSE_MAX_BYTES) that leaves ~200 bytes for a body: a few dozen numbers.
SMALL_LIMIT = 16 * 1024 + 200
WIDE = [float(index) / 7 for index in range(100)]


@pytest.fixture
def update(fed_client_api, model):
    response = fed_client_api.post(
        "/api/v1/model_updates/", {"federated_model": model.pk, "data": [1.5, 2.5]}, format="json"
    )
    return ModelUpdate.objects.get(pk=response.json()["id"])


def grant_of(url: str) -> transfers.LocalGrant:
    assert url.startswith(f"{BASE}{transfers.LOCAL_TRANSFER_PATH}")
    return transfers.read_grant(url.rsplit("/", 1)[1], method="GET")


class TestListsCarryUrls:
    def test_update_list(self, fed_client_api, update):
        (row,) = fed_client_api.get("/api/v1/model_updates/").json()
        assert row["data"] == f"{BASE}/api/v1/model_updates/{update.pk}/data/"
        response = fed_client_api.get(row["data"])
        assert response.status_code == status.HTTP_200_OK
        assert orjson.loads(response.content) == [1.5, 2.5]

    def test_aggregate_list(self, fed_client_api, model):
        aggregate = make_aggregate(model, [[1, 2], [3]])
        (row,) = fed_client_api.get("/api/v1/model_aggregates/").json()
        assert row["result"] == f"{BASE}/api/v1/model_aggregates/{aggregate.pk}/result/"
        response = fed_client_api.get(row["result"], {"format": "json"})
        assert orjson.loads(response.content) == [[1, 2], [3]]
        assert response["FMA-Aggregate-Id"] == str(aggregate.pk)

    def test_artifact_list_and_detail(self, fed_client_api, developer, fed_client):
        model = make_model(developer, name="with weights", initial_model=[1.0, 2.0])
        services.client_register(model=model, client=fed_client)
        (row,) = fed_client_api.get("/api/v1/model_artifacts/").json()
        artifact = model.artifacts.get()
        assert row == {
            "id": artifact.pk,
            "values": f"{BASE}/api/v1/model_artifacts/{artifact.pk}/values/",
            "version": "1.0.0",
            "federated_model": model.pk,
            "created_on": row["created_on"],
        }
        assert fed_client_api.get(f"/api/v1/model_artifacts/{artifact.pk}/").json()["values"] == [1.0, 2.0]
        assert orjson.loads(fed_client_api.get(row["values"]).content) == [1.0, 2.0]

    def test_artifacts_of_models_out_of_scope_do_not_exist(self, fed_client_api, other_developer):
        model = make_model(other_developer, name="theirs", initial_model=[1.0])
        artifact = model.artifacts.get()
        assert fed_client_api.get("/api/v1/model_artifacts/").json() == []
        response = fed_client_api.get(f"/api/v1/model_artifacts/{artifact.pk}/values/")
        assert response.status_code == status.HTTP_404_NOT_FOUND


class TestWeightsRoutes:
    def test_latest_model_names_its_aggregate_in_a_header(self, fed_client_api, model):
        aggregate = make_aggregate(model, [4.0, 5.0])
        response = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_model/")
        assert response.json() == {"values": [4.0, 5.0], "aggregate": aggregate.pk}
        assert response["FMA-Aggregate-Id"] == str(aggregate.pk)
        as_json = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_model/", {"format": "json"})
        assert orjson.loads(as_json.content) == [4.0, 5.0]
        assert as_json["FMA-Aggregate-Id"] == str(aggregate.pk)

    def test_latest_aggregate_header(self, fed_client_api, model):
        aggregate = make_aggregate(model, [4.0])
        response = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_aggregate/")
        assert response.json()["id"] == aggregate.pk
        assert response["FMA-Aggregate-Id"] == str(aggregate.pk)

    def test_no_weights_yet(self, fed_client_api, model):
        for route in ("get_latest_model", "get_latest_aggregate", "get_current_artifact"):
            assert fed_client_api.get(f"{MODELS}{model.pk}/{route}/").json() == {}
            response = fed_client_api.get(f"{MODELS}{model.pk}/{route}/", {"format": "json"})
            assert response.status_code == status.HTTP_404_NOT_FOUND
            assert response.json()["detail"].startswith(f"Model {model.pk} has no ")

    def test_unknown_format(self, fed_client_api, update):
        response = fed_client_api.get(f"/api/v1/model_updates/{update.pk}/data/", {"format": "pickle"})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"format": "Unknown format 'pickle'; one of safetensors, npz, json."}

    def test_unregistered_client_is_refused(self, fed_client_api, other_model):
        make_aggregate(other_model, [1.0])
        response = fed_client_api.get(f"{MODELS}{other_model.pk}/get_latest_model/", {"format": "json"})
        assert response.status_code == status.HTTP_403_FORBIDDEN


class TestBeyondTheResponseLimit:
    @pytest.fixture(autouse=True)
    def small_limit(self, settings):
        settings.FMA_RESPONSE_MAX_BYTES = SMALL_LIMIT

    def test_default_json_is_a_413_naming_the_binary_formats(self, fed_client_api, model):
        aggregate = make_aggregate(model, WIDE)
        url = f"{BASE}/api/v1/model_aggregates/{aggregate.pk}/result/"
        response = fed_client_api.get(f"/api/v1/model_aggregates/{aggregate.pk}/")
        assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        size = len(orjson.dumps(WIDE))
        assert response.json() == {
            "detail": f"These weights take {size} bytes as JSON, more than the 200 bytes a response may carry. "
            f"Ask for a binary format instead: GET {url}?format=safetensors (or npz); large weights are answered "
            "with a 303 redirect to a download URL."
        }
        latest = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_model/")
        assert latest.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        assert f"GET {BASE}{MODELS}{model.pk}/get_latest_model/?format=safetensors" in latest.json()["detail"]

    def test_weights_in_a_format_are_a_303_to_a_download(self, fed_client_api, model, media_root):
        aggregate = make_aggregate(model, WIDE)
        response = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_aggregate/", {"format": "json"})
        assert response.status_code == status.HTTP_303_SEE_OTHER
        assert response["FMA-Aggregate-Id"] == str(aggregate.pk)
        grant = grant_of(response["Location"])
        assert response.json() == {"url": response["Location"]}
        assert grant.filename == f"aggregate-{aggregate.pk}.json"
        with default_storage.open(grant.name) as stored:
            assert orjson.loads(stored.read()) == WIDE
        assert grant.name in stored_files(media_root)

    def test_lists_stay_small(self, fed_client_api, model):
        make_aggregate(model, WIDE)
        response = fed_client_api.get("/api/v1/model_aggregates/")
        assert response.status_code == status.HTTP_200_OK

    def test_answers_of_writes_give_the_url_of_weights_too_large(self, developer_api, fed_client_api, model):
        data = orjson.dumps(WIDE)
        created = fed_client_api.post(
            "/api/v1/uploads/", {"federated_model": model.pk, "format": "json", "size": len(data)}, format="json"
        ).json()
        upload = Upload.objects.get(pk=created["id"])
        default_storage.save(upload.bytes_name, ContentFile(data))
        response = fed_client_api.post(f"/api/v1/uploads/{created['id']}/complete/")
        assert response.status_code == status.HTTP_201_CREATED
        update_id = response.json()["id"]
        assert response.json()["data"] == f"{BASE}/api/v1/model_updates/{update_id}/data/"
        aggregate = make_aggregate(model, WIDE)
        published = developer_api.post(
            f"/api/v1/model_aggregates/{aggregate.pk}/publish_aggregate/", {"version": "2"}, format="json"
        )
        assert published.status_code == status.HTTP_201_CREATED
        assert published.json()["values"] == f"{BASE}/api/v1/model_artifacts/{published.json()['id']}/values/"

    def test_binary_in_a_303_to_the_stored_file(self, fed_client_api, model):
        aggregate = make_aggregate(model, WIDE)
        response = fed_client_api.get(f"/api/v1/model_aggregates/{aggregate.pk}/result/", {"format": "safetensors"})
        assert response.status_code == status.HTTP_303_SEE_OTHER
        # The stored file is safetensors already: linked to, not copied.
        assert grant_of(response["Location"]).name == aggregate.result.name


class TestBinaryInline:
    def test_safetensors_and_npz(self, fed_client_api, model):
        aggregate = make_aggregate(model, [[1.0, 2.0], [3.0]])
        url = f"/api/v1/model_aggregates/{aggregate.pk}/result/"
        as_safetensors = fed_client_api.get(url, {"format": "safetensors"})
        assert as_safetensors.status_code == status.HTTP_200_OK
        assert as_safetensors["Content-Type"] == "application/octet-stream"
        assert as_safetensors["Content-Disposition"] == f'attachment; filename="aggregate-{aggregate.pk}.safetensors"'
        assert as_safetensors["FMA-Aggregate-Id"] == str(aggregate.pk)
        tensors = safetensors.numpy.load(as_safetensors.content)
        assert sorted(tensors) == ["0", "1"]
        assert tensors["0"].tolist() == [1.0, 2.0]
        with np.load(io.BytesIO(fed_client_api.get(url, {"format": "npz"}).content), allow_pickle=False) as archive:
            assert archive["1"].tolist() == [3.0]

    def test_current_artifact_in_safetensors(self, fed_client_api, developer, fed_client):
        model = make_model(developer, name="artifact", initial_model=[0.5, 0.25])
        services.client_register(model=model, client=fed_client)
        response = fed_client_api.get(f"{MODELS}{model.pk}/get_current_artifact/", {"format": "safetensors"})
        assert response["FMA-Artifact-Id"] == str(model.current_artifact_id)
        assert safetensors.numpy.load(response.content)["0"].tolist() == [0.5, 0.25]
        latest = fed_client_api.get(f"{MODELS}{model.pk}/get_latest_model/", {"format": "safetensors"})
        assert latest.content == response.content
        assert "FMA-Aggregate-Id" not in latest
