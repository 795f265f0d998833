"""The upload flow with weights on S3 (moto's server): presigned PUT and GET with a plain HTTP client, as a client
would; the API itself is called in-process, as the Lambda function serves it."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import numpy as np
import pytest
import safetensors.numpy
from rest_framework import status

from fma_core.aws import aws_client
from fma_core.serialization import Weights
from fma_django_connectors import services
from fma_django_connectors.models import ModelUpdate, Upload
from tests.fma_django_connectors.test_transfers import BUCKET, moto_url, s3_storage  # noqa: F401  (fixtures)

from .conftest import make_aggregate

pytestmark = pytest.mark.usefixtures("s3_storage")

SHAPES = {"conv.weight": (8, 3, 3, 3), "conv.bias": (8,)}
# A response limit leaving ~1 KB for a body, so that these small weights already take the 303 path.
SMALL_LIMIT = 16 * 1024 + 1024


def _tensors(seed) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(seed)
    return {name: generator.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def _weights(tensors: dict[str, np.ndarray]) -> Weights:
    return Weights(layers=tuple(tensors.values()), layered=True, names=tuple(tensors))


def _stored(name: str) -> dict[str, np.ndarray]:
    return safetensors.numpy.load(aws_client("s3").get_object(Bucket=BUCKET, Key=f"models/{name}")["Body"].read())


def _http(method, url, *, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _bucket_keys(prefix: str) -> list[str]:
    listed = aws_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"models/{prefix}")
    return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture
def torch_model(developer, fed_client):
    initial = _tensors(0)
    weights = Weights(layers=tuple(initial.values()), layered=True, names=tuple(initial))
    model = services.model_create(
        developer=developer, name="s3", aggregator="avg_values_if_data", initial_model=weights
    )
    services.client_register(model=model, client=fed_client)
    return model


def _upload(api, model, data: bytes, *, size=None, sha256=None):
    fields = {"federated_model": model.pk, "format": "safetensors", "size": len(data) if size is None else size}
    fields["sha256"] = sha256 or hashlib.sha256(data).hexdigest()
    target = api.post("/api/v1/uploads/", fields, format="json")
    assert target.status_code == status.HTTP_201_CREATED, target.json()
    return target.json()


def test_upload_by_presigned_put_then_complete_twice(fed_client_api, torch_model):
    tensors = _tensors(1)
    data = safetensors.numpy.save(tensors)
    target = _upload(fed_client_api, torch_model, data)
    assert target["upload_url"].startswith(f"{aws_client('s3').meta.endpoint_url}/{BUCKET}/models/uploads/")

    put_status, _ = _http("PUT", target["upload_url"], body=data, headers=target["headers"])
    first = fed_client_api.post(f"/api/v1/uploads/{target['id']}/complete/")
    again = fed_client_api.post(f"/api/v1/uploads/{target['id']}/complete/")

    assert put_status == status.HTTP_200_OK
    assert first.status_code == status.HTTP_201_CREATED, first.json()
    assert (again.status_code, again.json()) == (status.HTTP_200_OK, first.json())
    update = ModelUpdate.objects.get()
    stored = safetensors.numpy.load(
        aws_client("s3").get_object(Bucket=BUCKET, Key=f"models/{update.data.name}")["Body"].read()
    )
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(stored[name], tensor)
    # The uploaded object is gone once stored as the update's weights.
    assert _bucket_keys("uploads/") == []


def test_download_by_303_to_a_presigned_get(fed_client_api, torch_model, settings):
    tensors = _tensors(2)
    aggregate = make_aggregate(torch_model, _weights(tensors))
    settings.FMA_RESPONSE_MAX_BYTES = SMALL_LIMIT

    response = fed_client_api.get(f"/api/v1/models/{torch_model.pk}/get_latest_model/", {"format": "safetensors"})
    assert response.status_code == status.HTTP_303_SEE_OTHER
    assert response["FMA-Aggregate-Id"] == str(aggregate.pk)
    get_status, body = _http("GET", response["Location"])

    assert get_status == status.HTTP_200_OK
    downloaded = safetensors.numpy.load(body)
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(downloaded[name], tensor)


class TestRefused:
    """Bytes refused at completion leave nothing: no upload row, no update, no object in the bucket."""

    @pytest.fixture(autouse=True)
    def nothing_left(self, db, request):
        request.getfixturevalue("s3_storage")
        before = _bucket_keys("uploads/") + _bucket_keys("updates/")
        yield
        assert not Upload.objects.exists()
        assert not ModelUpdate.objects.exists()
        assert _bucket_keys("uploads/") + _bucket_keys("updates/") == before

    def test_wrong_digest(self, fed_client_api, torch_model):
        data = safetensors.numpy.save(_tensors(3))
        target = _upload(fed_client_api, torch_model, data, sha256="0" * 64)
        _http("PUT", target["upload_url"], body=data, headers=target["headers"])
        response = fed_client_api.post(f"/api/v1/uploads/{target['id']}/complete/")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["sha256"].startswith(f"The upload's SHA-256 is {hashlib.sha256(data).hexdigest()}")

    def test_body_of_another_length(self, fed_client_api, torch_model):
        # The URL signs the length, so S3 itself refuses such a PUT; moto does not check presigned signatures
        # and takes it, which leaves the last word to the completion, as for any storage.
        data = safetensors.numpy.save(_tensors(4))
        target = _upload(fed_client_api, torch_model, data, size=len(data) + 8)
        headers = {**target["headers"], "Content-Length": str(len(data))}
        put_status, _ = _http("PUT", target["upload_url"], body=data, headers=headers)
        response = fed_client_api.post(f"/api/v1/uploads/{target['id']}/complete/")
        assert put_status == status.HTTP_200_OK
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "size": f"The upload holds {len(data)} bytes, but its size was given as {len(data) + 8}."
        }
