"""``/api/v1/uploads/``: the rules checked before any byte moves, completion of the bytes, retries and cleanup.

The bytes are put where the upload URL would store them (Django's storage, at the upload's name); the
transfer itself is tested through the local server and moto's S3 in ``tests/integration``.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from datetime import datetime, timedelta

import numpy as np
import orjson
import pytest
import safetensors.numpy
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework import status

from fma_core.serialization import Weights
from fma_core.tensors import encode_safetensors
from fma_django_connectors import services
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.exceptions import ApplicationError
from fma_django_connectors.models import ModelArtifact, ModelUpdate, Upload

from .conftest import basic_client, make_aggregate, make_model, stored_files, uuid_client

pytestmark = pytest.mark.usefixtures("media_root")

UPLOADS = "/api/v1/uploads/"
NO_UPLOAD = {"detail": "No Upload matches the given query."}


def uploaded_files(root):
    """Files of uploads and of updates (what a refused upload must not leave behind)."""
    return [name for name in stored_files(root) if name.startswith(("uploads/", "updates/"))]


@pytest.fixture
def nothing_left(db, media_root):
    """After a refusal: no upload row, no update, no uploaded or update file."""
    yield
    assert not Upload.objects.exists()
    assert not ModelUpdate.objects.exists()
    assert uploaded_files(media_root) == []


def json_bytes(document) -> bytes:
    return orjson.dumps(document)


def create(api, **fields):
    return api.post(UPLOADS, fields, format="json")


def update_upload(api, model, data: bytes, **fields):
    """Create an update upload of ``data`` (json unless ``format`` says otherwise); returns the response."""
    fields = {"federated_model": model.pk, "format": "json", "size": len(data), **fields}
    return create(api, **fields)


def send(upload_id, data: bytes) -> None:
    """The bytes arriving where the upload URL stores them."""
    upload = Upload.objects.get(pk=upload_id)
    default_storage.save(upload.bytes_name, ContentFile(data))


def complete(api, upload_id):
    return api.post(f"{UPLOADS}{upload_id}/complete/", format="json")


def upload_and_complete(api, model, data: bytes, **fields):
    created = update_upload(api, model, data, **fields)
    assert created.status_code == status.HTTP_201_CREATED, created.json()
    send(created.json()["id"], data)
    return created.json()["id"], complete(api, created.json()["id"])


class TestCreate:
    def test_answers_where_to_send_the_bytes(self, fed_client_api, model, media_root):
        before = timezone.now()
        response = update_upload(fed_client_api, model, b"[1, 2, 3]", sha256=hashlib.sha256(b"[1, 2, 3]").hexdigest())
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert set(body) == {"id", "upload_url", "method", "headers", "expires_at"}
        assert body["method"] == "PUT"
        assert body["upload_url"].startswith("http://testserver/")
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert before + timedelta(minutes=59) < expires_at < timezone.now() + timedelta(hours=1, seconds=1)
        upload = Upload.objects.get(pk=body["id"])
        assert (upload.purpose, upload.format, upload.size) == ("update", "json", 9)
        # Nothing stored yet: the bytes come with the PUT.
        assert stored_files(media_root) == []

    def test_developer_names_the_client(self, developer_api, fed_client, model):
        response = update_upload(developer_api, model, b"[1]", client=str(fed_client.uuid))
        assert response.status_code == status.HTTP_201_CREATED
        assert Upload.objects.get(pk=response.json()["id"]).client == fed_client


@pytest.mark.usefixtures("nothing_left")
class TestCreateRefused:
    """Refused before any byte moves: a 4xx naming the problem, and no upload row or file left."""

    def test_no_credentials(self, anonymous_api, model):
        response = update_upload(anonymous_api, model, b"[1]")
        assert response.status_code == status.HTTP_401_UNAUTHORIZED

    def test_client_not_registered(self, fed_client_api, other_model):
        # Answered as an unknown id, as POST /api/v1/model_updates/ does: no message confirms the model exists.
        response = update_upload(fed_client_api, other_model, b"[1]")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": [f'Invalid pk "{other_model.pk}" - object does not exist.']}

    def test_another_developers_model(self, developer_api, fed_client, other_model):
        response = update_upload(developer_api, other_model, b"[1]", client=str(fed_client.uuid))
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"federated_model": [f'Invalid pk "{other_model.pk}" - object does not exist.']}

    def test_developer_update_without_client(self, developer_api, model):
        response = update_upload(developer_api, model, b"[1]")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"client": ["This field is required."]}

    def test_base_aggregate_of_another_model(self, fed_client_api, model, other_model):
        foreign = make_aggregate(other_model, [1])
        response = update_upload(fed_client_api, model, b"[1]", base_aggregate=foreign.pk)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"base_aggregate": [f'Invalid pk "{foreign.pk}" - object does not exist.']}

    def test_size_over_the_limit(self, fed_client_api, model, settings):
        settings.FMA_UPLOAD_MAX_BYTES = 1000
        response = create(fed_client_api, federated_model=model.pk, format="safetensors", size=1001)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "size": ["1001 bytes is more than the 1000 bytes an upload may have (FMA_UPLOAD_MAX_BYTES)."]
        }

    def test_json_over_its_own_limit(self, fed_client_api, model, settings):
        settings.FMA_UPLOAD_JSON_MAX_BYTES = 1000
        response = create(fed_client_api, federated_model=model.pk, format="json", size=1001)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "size": [
                "1001 bytes is more than the 1000 bytes a json upload may have (FMA_UPLOAD_JSON_MAX_BYTES): JSON is "
                "parsed whole in memory; upload large weights as safetensors or npz."
            ]
        }

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"size": 0}, {"size": ["Ensure this value is greater than or equal to 1."]}),
            ({"format": "pickle"}, {"format": ['"pickle" is not a valid choice.']}),
            ({"sha256": "abc"}, {"sha256": ["Must be the SHA-256 digest of the bytes: 64 hexadecimal digits."]}),
            ({"purpose": "other"}, {"purpose": ['"other" is not a valid choice.']}),
        ],
    )
    def test_invalid_fields(self, fed_client_api, model, fields, expected):
        response = create(fed_client_api, **{"federated_model": model.pk, "format": "npz", "size": 10, **fields})
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == expected

    @pytest.mark.parametrize("purpose", ["initial_model", "artifact"])
    def test_clients_upload_only_updates(self, fed_client_api, model, purpose):
        response = create(fed_client_api, federated_model=model.pk, purpose=purpose, format="npz", size=10, version="2")
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == {"detail": f"Only developers may upload an {purpose}; clients upload updates."}

    def test_initial_model_of_a_model_with_weights(self, developer):
        model = make_model(developer, initial_model=[1.0, 2.0])
        response = create(
            basic_client(developer), federated_model=model.pk, purpose="initial_model", format="json", size=10
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "purpose": f"Model {model.pk} already has weights; an initial_model is only for a model without any "
            "(upload an artifact, or publish an aggregate, instead)."
        }

    def test_artifact_without_version(self, developer_api, model):
        response = create(developer_api, federated_model=model.pk, purpose="artifact", format="npz", size=10)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"version": ["An artifact upload needs a version."]}

    def test_artifact_version_taken(self, developer):
        model = make_model(developer, initial_model=[1.0, 2.0])
        response = create(
            basic_client(developer),
            federated_model=model.pk,
            purpose="artifact",
            version="1.0.0",
            format="npz",
            size=10,
        )
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"version": f"Model {model.pk} already has an artifact of version '1.0.0'."}

    def test_binary_update_of_a_model_with_an_update_schema(self, developer, fed_client_api, fed_client):
        model = make_model(developer, update_schema={"type": "array"})
        services.client_register(model=model, client=fed_client)
        response = update_upload(fed_client_api, model, b"0" * 10, format="safetensors")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {
            "format": [
                f"Model {model.pk} has an update_schema, a JSON Schema of the JSON document: its updates are "
                "uploaded as json (checked against it), not as binary tensors."
            ]
        }


class TestComplete:
    def test_makes_a_pending_update_with_the_body_of_a_post(self, fed_client_api, fed_client, model, media_root):
        upload_id, response = upload_and_complete(fed_client_api, model, json_bytes([1.5, 2.5]), num_examples=7)
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert body == {
            "id": body["id"],
            "client": str(fed_client.uuid),
            "federated_model": model.pk,
            "data": [1.5, 2.5],
            "status": ModelUpdate.Status.PENDING,
            "status_reason": "",
            "base_aggregate": None,
            "num_examples": 7,
            "created_on": body["created_on"],
        }
        # The uploaded bytes are gone; the update's weights file stays.
        assert [name.split("/")[0] for name in stored_files(media_root)] == ["updates"]
        assert Upload.objects.get(pk=upload_id).update_id == body["id"]

    def test_completing_again_answers_the_same_update(self, fed_client_api, model):
        upload_id, first = upload_and_complete(fed_client_api, model, json_bytes([1.0]))
        again = complete(fed_client_api, upload_id)
        assert again.status_code == status.HTTP_200_OK
        assert again.json() == first.json()
        assert ModelUpdate.objects.count() == 1

    def test_digest_checked_when_given(self, fed_client_api, model):
        data = json_bytes([[1, 2], [3]])
        _, response = upload_and_complete(fed_client_api, model, data, sha256=hashlib.sha256(data).hexdigest().upper())
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["data"] == [[1, 2], [3]]

    def test_bytes_not_sent_yet_is_409_and_the_upload_stays(self, fed_client_api, model):
        created = update_upload(fed_client_api, model, b"[1]").json()
        response = complete(fed_client_api, created["id"])
        assert response.status_code == status.HTTP_409_CONFLICT
        assert response.json() == {
            "detail": f"Upload {created['id']} has no bytes yet: send them to its upload_url first, then complete it."
        }
        send(created["id"], b"[1]")
        assert complete(fed_client_api, created["id"]).status_code == status.HTTP_201_CREATED

    def test_developer_update_is_checked_like_a_post(self, developer_api, fed_client, model):
        _, response = upload_and_complete(developer_api, model, json_bytes([2]), client=str(fed_client.uuid))
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["applied_aggregate"] is None

    def test_initial_model_becomes_artifact_1_0_0_and_current(self, developer_api, model):
        data = json_bytes([[1.0, 2.0], [3.0]])
        created = create(
            developer_api, federated_model=model.pk, purpose="initial_model", format="json", size=len(data)
        )
        send(created.json()["id"], data)
        response = complete(developer_api, created.json()["id"])
        assert response.status_code == status.HTTP_201_CREATED
        body = response.json()
        assert (body["version"], body["values"], body["federated_model"]) == ("1.0.0", [[1.0, 2.0], [3.0]], model.pk)
        model.refresh_from_db()
        assert model.current_artifact_id == body["id"]

    def test_artifact_of_a_version_becomes_current(self, developer):
        api = basic_client(developer)
        model = make_model(developer, initial_model=[1.0, 2.0])
        data = json_bytes([3.0, 4.0])
        created = create(
            api, federated_model=model.pk, purpose="artifact", version="2.0", format="json", size=len(data)
        )
        send(created.json()["id"], data)
        response = complete(api, created.json()["id"])
        assert response.status_code == status.HTTP_201_CREATED
        assert response.json()["version"] == "2.0"
        model.refresh_from_db()
        assert model.current_artifact.version == "2.0"

    def test_only_whoever_made_it_completes_it(self, fed_client_api, developer_api, model):
        stranger = services.client_register(model=model)
        created = update_upload(fed_client_api, model, b"[1]").json()
        send(created["id"], b"[1]")
        for api in (uuid_client(stranger), developer_api):
            response = complete(api, created["id"])
            assert response.status_code == status.HTTP_404_NOT_FOUND
            assert response.json() == NO_UPLOAD
        assert complete(fed_client_api, created["id"]).status_code == status.HTTP_201_CREATED


@pytest.mark.usefixtures("nothing_left")
class TestCompleteRefused:
    """Bytes refused at completion: a 4xx naming the problem; the upload, its bytes and any update are gone."""

    def refused(self, api, model, announced: bytes, sent: bytes, **fields):
        created = update_upload(api, model, announced, **fields)
        assert created.status_code == status.HTTP_201_CREATED, created.json()
        send(created.json()["id"], sent)
        return complete(api, created.json()["id"])

    def test_wrong_size(self, fed_client_api, model):
        response = self.refused(fed_client_api, model, b"[1, 2]", b"[1, 2, 3]")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"size": "The upload holds 9 bytes, but its size was given as 6."}

    def test_wrong_digest(self, fed_client_api, model):
        digest = hashlib.sha256(b"[1, 2]").hexdigest()
        response = self.refused(fed_client_api, model, b"[1, 2]", b"[3, 4]", sha256=digest)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        actual = hashlib.sha256(b"[3, 4]").hexdigest()
        assert response.json() == {
            "sha256": f"The upload's SHA-256 is {actual}, not the {digest} given when it was made."
        }

    def test_not_json(self, fed_client_api, model):
        response = self.refused(fed_client_api, model, b"[1, 2", b"[1, 2")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["data"].startswith("The json upload is not valid weights: not valid JSON: ")

    def test_structure_unlike_the_models(self, fed_client_api, developer, fed_client):
        model = make_model(developer, name="shaped", initial_model=[1.0, 2.0, 3.0])
        services.client_register(model=model, client=fed_client)
        response = self.refused(fed_client_api, model, b"[1.0, 2.0]", b"[1.0, 2.0]")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "layer 0 has shape [2] but the model's weights have shape [3]"}

    def test_update_schema_applies_to_a_json_upload(self, fed_client_api, developer, fed_client):
        model = make_model(developer, name="schema", update_schema={"type": "array", "maxItems": 2})
        services.client_register(model=model, client=fed_client)
        response = self.refused(fed_client_api, model, b"[1, 2, 3]", b"[1, 2, 3]")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "data did not match the required schema: [1, 2, 3] is too long"}

    def test_expired(self, fed_client_api, model):
        created = update_upload(fed_client_api, model, b"[1]").json()
        send(created["id"], b"[1]")
        Upload.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
        response = complete(fed_client_api, created["id"])
        assert response.status_code == status.HTTP_410_GONE
        assert response.json()["detail"].startswith(f"Upload {created['id']} expired at ")

    def test_client_unregistered_meanwhile(self, fed_client_api, fed_client, model):
        created = update_upload(fed_client_api, model, b"[1]").json()
        send(created["id"], b"[1]")
        model.clients.remove(fed_client)
        response = complete(fed_client_api, created["id"])
        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json() == {"detail": f"Client {fed_client.uuid} is not registered to model {model.pk}."}


class TestCleanup:
    def test_expired_uploads_go_with_their_bytes(self, fed_client_api, model, media_root):
        expired = update_upload(fed_client_api, model, b"[1]").json()["id"]
        live = update_upload(fed_client_api, model, b"[2]").json()["id"]
        send(expired, b"[1]")
        send(live, b"[2]")
        Upload.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
        call_command("cleanup_uploads")
        assert list(Upload.objects.values_list("pk", flat=True)) == [Upload.objects.get(pk=live).pk]
        assert stored_files(media_root) == [Upload.objects.get(pk=live).bytes_name]

    def test_downloads_go_once_their_urls_expired(self, db, media_root, settings):
        old = default_storage.save("downloads/old.npz", ContentFile(b"old"))
        fresh = default_storage.save("downloads/fresh.npz", ContentFile(b"fresh"))
        expired_at = (timezone.now() - timedelta(seconds=fma_settings.FMA_DOWNLOAD_LIFETIME_SECONDS + 1)).timestamp()
        os.utime(media_root / old, (expired_at, expired_at))
        call_command("cleanup_uploads")
        assert stored_files(media_root) == [fresh]

    def test_each_new_upload_removes_expired_ones(self, fed_client_api, model, media_root):
        expired = update_upload(fed_client_api, model, b"[1]").json()["id"]
        send(expired, b"[1]")
        Upload.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
        update_upload(fed_client_api, model, b"[2]")
        assert not Upload.objects.filter(pk=expired).exists()
        assert stored_files(media_root) == []


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_make_one_update(fed_client_api, model):
    created = update_upload(fed_client_api, model, b"[1, 2]").json()
    send(created["id"], b"[1, 2]")
    answers = []

    def complete_once():
        try:
            answers.append(services.upload_complete(upload=Upload.objects.get(pk=created["id"]))[1])
        finally:
            connection.close()

    threads = [threading.Thread(target=complete_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False, False, False, True]
    assert ModelUpdate.objects.count() == 1
    assert ModelArtifact.objects.count() == 0


def tensors(**layers) -> Weights:
    """Named tensors, as a PyTorch ``state_dict`` has them (dots in names passed as ``__``)."""
    names = tuple(name.replace("__", ".") for name in layers)
    return Weights(layers=tuple(layers.values()), layered=True, names=names)


TRAINED = tensors(
    fc__weight=np.arange(6, dtype=np.float32).reshape(2, 3) / 4, fc__bias=np.array([0.5, -1.5], np.float32)
)


@pytest.fixture
def binary_model(developer, fed_client):
    """A model whose initial weights are float32 tensors named as in a ``state_dict``."""
    initial = tensors(fc__weight=np.zeros((2, 3), np.float32), fc__bias=np.zeros(2, np.float32))
    model = services.model_create(
        developer=developer, name="torch", aggregator="avg_values_if_data", initial_model=initial
    )
    services.client_register(model=model, client=fed_client)
    return model


def npz_bytes(arrays, *, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=allow_pickle, **arrays)
    return buffer.getvalue()


class TestBinary:
    @pytest.mark.parametrize(
        ("fmt", "data"),
        [
            ("safetensors", encode_safetensors(TRAINED)),
            ("npz", npz_bytes({"fc.weight": TRAINED.layers[0], "fc.bias": TRAINED.layers[1]})),
        ],
    )
    def test_update_in_a_binary_format(self, fed_client_api, binary_model, fmt, data):
        _, response = upload_and_complete(
            fed_client_api, binary_model, data, format=fmt, sha256=hashlib.sha256(data).hexdigest()
        )
        assert response.status_code == status.HTTP_201_CREATED, response.json()
        assert response.json()["data"] == [[[0.0, 0.25, 0.5], [0.75, 1.0, 1.25]], [0.5, -1.5]]
        update = ModelUpdate.objects.get(pk=response.json()["id"])
        assert update.structure["tensors"] == [
            {"name": "fc.weight", "shape": [2, 3], "dtype": "float32"},
            {"name": "fc.bias", "shape": [2], "dtype": "float32"},
        ]
        # The same tensors come back, float32 as sent.
        download = fed_client_api.get(f"/api/v1/model_updates/{update.pk}/data/", {"format": "safetensors"})
        assert download.status_code == status.HTTP_200_OK
        returned = safetensors.numpy.load(download.content)
        assert sorted(returned) == ["fc.bias", "fc.weight"]
        for name, layer in zip(TRAINED.names, TRAINED.layers, strict=True):
            assert returned[name].dtype == np.float32
            assert np.array_equal(returned[name], layer)

    def test_developer_initial_model_in_safetensors(self, developer_api, model):
        data = encode_safetensors(TRAINED)
        created = create(
            developer_api, federated_model=model.pk, purpose="initial_model", format="safetensors", size=len(data)
        )
        send(created.json()["id"], data)
        response = complete(developer_api, created.json()["id"])
        assert response.status_code == status.HTTP_201_CREATED
        model.refresh_from_db()
        assert model.current_artifact_id == response.json()["id"]
        assert [tensor["name"] for tensor in model.structure["tensors"]] == ["fc.weight", "fc.bias"]


@pytest.mark.usefixtures("nothing_left")
class TestBinaryRefused:
    """Refused bytes in a binary format: a 400 naming the tensor or the problem; nothing is left behind."""

    def refused(self, api, model, data: bytes, fmt: str):
        created = update_upload(api, model, data, format=fmt)
        assert created.status_code == status.HTTP_201_CREATED, created.json()
        send(created.json()["id"], data)
        response = complete(api, created.json()["id"])
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        return response.json()

    def test_pickle_inside_an_npz(self, fed_client_api, binary_model):
        data = npz_bytes({"fc.weight": np.array([{"a": 1}], dtype=object)}, allow_pickle=True)
        assert self.refused(fed_client_api, binary_model, data, "npz") == {
            "data": "The npz upload is not valid weights: the npz holds a Python object array (pickle), which is "
            "refused: save plain numeric arrays"
        }

    def test_nan(self, fed_client_api, binary_model):
        weight = TRAINED.layers[0].copy()
        weight[1, 2] = np.nan
        data = encode_safetensors(tensors(fc__weight=weight, fc__bias=TRAINED.layers[1]))
        assert self.refused(fed_client_api, binary_model, data, "safetensors") == {
            "data": "tensor 'fc.weight' contains NaN or infinite values"
        }

    def test_an_empty_tensor_in_an_initial_model(self, developer_api, model):
        # An empty tensor would fail every aggregation that writes the model's tensors.
        data = safetensors.numpy.save({"fc.weight": np.zeros((0, 3), np.float32), "fc.bias": np.ones(2, np.float32)})
        created = create(
            developer_api, federated_model=model.pk, purpose="initial_model", format="safetensors", size=len(data)
        )
        send(created.json()["id"], data)
        response = complete(developer_api, created.json()["id"])

        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json() == {"data": "tensor 'fc.weight' is empty"}

    def test_wrong_tensor_name(self, fed_client_api, binary_model):
        data = encode_safetensors(tensors(fc__weight=TRAINED.layers[0], fc__bais=TRAINED.layers[1]))
        assert self.refused(fed_client_api, binary_model, data, "safetensors") == {
            "data": "tensor 'fc.bias' (shape [2], float32) is missing from data"
        }

    def test_wrong_shape(self, fed_client_api, binary_model):
        data = encode_safetensors(tensors(fc__weight=np.zeros((3, 2), np.float32), fc__bias=TRAINED.layers[1]))
        assert self.refused(fed_client_api, binary_model, data, "safetensors") == {
            "data": "tensor 'fc.weight' has shape [3, 2] but the model's weights have shape [2, 3]"
        }

    def test_wrong_dtype(self, fed_client_api, binary_model):
        data = encode_safetensors(tensors(fc__weight=TRAINED.layers[0].astype(np.float64), fc__bias=TRAINED.layers[1]))
        assert self.refused(fed_client_api, binary_model, data, "safetensors") == {
            "data": "tensor 'fc.weight' has dtype float64 but the model's weights have dtype float32"
        }

    def test_not_safetensors(self, fed_client_api, binary_model):
        body = self.refused(fed_client_api, binary_model, b"\x00" * 7, "safetensors")
        assert body == {
            "data": "The safetensors upload is not valid weights: not a valid safetensors file: 7 bytes is shorter "
            "than the 8-byte header length"
        }


def test_deleting_the_model_removes_pending_upload_bytes(
    fed_client_api, developer_api, model, media_root, django_capture_on_commit_callbacks
):
    created = update_upload(fed_client_api, model, b"[1]").json()
    send(created["id"], b"[1]")
    with django_capture_on_commit_callbacks(execute=True):
        assert developer_api.delete(f"/api/v1/models/{model.pk}/").status_code == status.HTTP_204_NO_CONTENT
    assert not Upload.objects.exists()
    assert uploaded_files(media_root) == []


def test_json_artifact_of_a_named_model_takes_its_names(developer_api, binary_model):
    data = json_bytes([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [7.0, 8.0]])
    created = create(
        developer_api, federated_model=binary_model.pk, purpose="artifact", version="2", format="json", size=len(data)
    )
    send(created.json()["id"], data)
    response = complete(developer_api, created.json()["id"])
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    artifact = binary_model.artifacts.get(version="2")
    assert [tensor["name"] for tensor in artifact.structure["tensors"]] == ["fc.weight", "fc.bias"]


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_of_refused_bytes_leave_nothing(fed_client_api, model, media_root):
    created = update_upload(fed_client_api, model, b"[1, 2]", sha256="0" * 64).json()
    send(created["id"], b"[1, 2]")
    upload = Upload.objects.get(pk=created["id"])
    refusals = []

    def complete_once():
        try:
            services.upload_complete(upload=upload)
        except ApplicationError as error:
            refusals.append((error.status_code, error.body))
        finally:
            connection.close()

    threads = [threading.Thread(target=complete_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each completion either refuses the bytes (400, the first and any that got the row before it was removed)
    # or finds the upload gone (404): none succeeds, none fails with a 500.
    actual = hashlib.sha256(b"[1, 2]").hexdigest()
    message = f"The upload's SHA-256 is {actual}, not the {'0' * 64} given when it was made."
    refused_bytes = (400, {"sha256": message})
    gone = (404, {"detail": f"Upload {created['id']} was refused and removed meanwhile; make a new one."})
    assert len(refusals) == 4
    assert refused_bytes in refusals
    assert all(refusal in (refused_bytes, gone) for refusal in refusals)
    assert not Upload.objects.exists()
    assert uploaded_files(media_root) == []


class TestSignedModelUploads:
    """On a ``signed`` model an upload is completed by a signed request only; a stolen uuid learns nothing."""

    @pytest.fixture
    def signed_upload(self, signer, signed_model):
        data = json_bytes([[5.0, 6.0], [7.0]])
        created = signer.call(
            "POST", UPLOADS, {"federated_model": signed_model.pk, "format": "json", "size": len(data)}
        )
        assert created.status_code == status.HTTP_201_CREATED, created.json()
        return created.json()["id"], data

    def test_a_stolen_uuid_cannot_tell_an_upload_exists(self, signer, signed_upload):
        upload_id, _ = signed_upload
        # Before the bytes: a 409 ("no bytes yet") would confirm the upload; it answers as an unknown id.
        response = complete(uuid_client(Upload.objects.get(pk=upload_id).client), upload_id)
        assert (response.status_code, response.json()) == (status.HTTP_404_NOT_FOUND, NO_UPLOAD)

    def test_a_stolen_uuid_cannot_complete_it_nor_read_its_data(self, signer, signed_upload):
        upload_id, data = signed_upload
        send(upload_id, data)
        response = complete(uuid_client(Upload.objects.get(pk=upload_id).client), upload_id)
        assert (response.status_code, response.json()) == (status.HTTP_404_NOT_FOUND, NO_UPLOAD)
        assert not ModelUpdate.objects.exists()

        signed = signer.call("POST", f"{UPLOADS}{upload_id}/complete/")
        assert signed.status_code == status.HTTP_201_CREATED
        assert signed.json()["data"] == [[5.0, 6.0], [7.0]]
        # Completed, it still answers the unsigned request as an unknown upload (its data is the client's).
        again = complete(uuid_client(Upload.objects.get(pk=upload_id).client), upload_id)
        assert (again.status_code, again.json()) == (status.HTTP_404_NOT_FOUND, NO_UPLOAD)

    def test_an_unknown_and_a_foreign_upload_answer_alike(self, signer, signed_upload, fed_client_api, model):
        upload_id, _ = signed_upload
        foreign = update_upload(fed_client_api, model, b"[1]").json()["id"]
        unknown = "00000000-0000-4000-8000-000000000000"
        answers = {
            (response.status_code, response.content)
            for response in (
                signer.call("POST", f"{UPLOADS}{unknown}/complete/"),
                signer.call("POST", f"{UPLOADS}{foreign}/complete/"),
                complete(uuid_client(Upload.objects.get(pk=upload_id).client), upload_id),
            )
        }
        assert answers == {(status.HTTP_404_NOT_FOUND, orjson.dumps(NO_UPLOAD))}
