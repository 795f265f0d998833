"""Storage failing while an update is saved, under the real Lambda handler: the local folder (blocked, or a
full disk) and S3 (moto's server stopped, the bucket removed).

For ``POST /api/v1/model_updates/`` and ``POST /api/v1/uploads/{id}/complete/`` alike: the caller gets a JSON
503 naming the failure (never a traceback), no update row exists without its file, no file is left without
its row (the folder or bucket is listed), an upload whose completion failed is kept with its bytes, and the
same request succeeds once the storage is back.
"""

import io
import json
import logging
import urllib.request
from urllib.parse import urlsplit

import numpy as np
import pytest
import safetensors.numpy
from django.core.files.storage import default_storage

import service_initialization
from fma_core.aws import AwsSettings, aws_client
from fma_django_connectors import services
from fma_django_connectors.models import ModelUpdate, Upload
from fma_django_connectors.storage import transfers
from tests.events import make_context, make_v2_event, response_body
from tests.s3_storage import MotoS3, store_model_data_in_s3
from tests.storage_faults import block_folder, full_disk_storages, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

UPDATES = "/api/v1/model_updates/"
UPLOADS = "/api/v1/uploads/"
BUCKET = "fma-storage-faults"
DISK_FULL = (
    "Could not read or write model data: the storage failed (No space left on device); "
    "check the model data folder (MEDIA_ROOT) and try again."
)
NOT_A_FOLDER = (
    "Could not read or write model data: the storage failed (FileExistsError); "
    "check the model data folder (MEDIA_ROOT) and try again."
)
NO_BUCKET = (
    "Could not read or write model data: AWS S3 refused the call: NoSuchBucket The specified bucket does not "
    "exist (check FMA_MODEL_DATA_BUCKET and the IAM role)"
)
UNREACHABLE = "Could not read or write model data: AWS S3 is unreachable ("


def _call(method, path, *, client, body=None, query=None):
    headers = {"CLIENT-UUID": str(client.uuid), "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    event = make_v2_event(
        method=method, path=path, headers=headers, query=query, body=None if body is None else json.dumps(body)
    )
    response = service_initialization.handler(event, make_context())
    return response["statusCode"], json.loads(response_body(response))


def _push(model, client, values):
    return _call("POST", UPDATES, client=client, body={"federated_model": model.pk, "data": values})


def _tensors(seed):
    return {"fc.weight": np.random.default_rng(seed).standard_normal((4, 3)).astype(np.float32)}


def _make_upload(model, client, data):
    status, target = _call(
        "POST", UPLOADS, client=client, body={"federated_model": model.pk, "format": "safetensors", "size": len(data)}
    )
    assert status == 201, target
    return target


def _complete(client, target):
    return _call("POST", f"{UPLOADS}{target['id']}/complete/", client=client)


def _update_files():
    return sorted(ModelUpdate.objects.values_list("data", flat=True))


@pytest.fixture
def model(django_user_model):
    developer = django_user_model.objects.create_user(username="ada", password="unused")
    return services.model_create(developer=developer, name="faults", aggregator="avg_values_if_data")


@pytest.fixture
def fed_client(model):
    return services.client_register(model=model)


class LocalFault:
    """A break of the folder updates are written to, made with ``start()`` and mended with ``stop()``."""

    def __init__(self, kind, settings, root):
        self.kind, self._settings, self._root = kind, settings, root
        self._working = settings.STORAGES
        self.body = {"detail": NOT_A_FOLDER if kind == "blocked folder" else DISK_FULL}

    def start(self):
        if self.kind == "blocked folder":
            block_folder(self._root, "updates")
        else:
            self._settings.STORAGES = full_disk_storages(self._working)

    def stop(self):
        if self.kind == "blocked folder":
            (self._root / "updates").unlink()
        else:
            self._settings.STORAGES = self._working


class TestLocalFolder:
    @pytest.fixture
    def media_root(self, settings, tmp_path):
        root = tmp_path / "media"
        root.mkdir()
        settings.MEDIA_ROOT = root
        return root

    @pytest.fixture(params=["blocked folder", "full disk"])
    def fault(self, request, settings, media_root):
        return LocalFault(request.param, settings, media_root)

    def _put(self, target, data):
        # The local server's transfer code itself (api_service/local_server.py serves it over HTTP).
        token = urlsplit(target["upload_url"]).path.removeprefix(transfers.LOCAL_TRANSFER_PATH)
        transfers.receive(transfers.read_grant(token, method="PUT"), io.BytesIO(data), len(data))

    def test_a_json_update_is_a_503_leaving_nothing_and_succeeds_once_the_storage_is_back(
        self, model, fed_client, media_root, fault
    ):
        # Execute
        fault.start()
        failed = _push(model, fed_client, [1.0, 2.0])
        rows, left = ModelUpdate.objects.count(), stored_files(media_root)
        fault.stop()
        accepted = _push(model, fed_client, [1.0, 2.0])

        # Assert: no row, and no file (a full disk leaves part of one), until the storage is back.
        assert failed == (503, fault.body)
        assert rows == 0
        assert [name for name in left if name.startswith("updates/")] == []
        assert accepted[0] == 201, accepted
        assert ModelUpdate.objects.get().pk == accepted[1]["id"]
        assert stored_files(media_root) == _update_files()

    def test_completing_an_upload_is_a_503_that_keeps_the_upload_and_succeeds_once_the_storage_is_back(
        self, model, fed_client, media_root, fault
    ):
        # Prepare: the bytes arrived before the storage broke.
        data = safetensors.numpy.save(_tensors(1))
        target = _make_upload(model, fed_client, data)
        self._put(target, data)
        uploaded = stored_files(media_root)

        # Execute
        fault.start()
        failed = _complete(fed_client, target)
        rows, left = ModelUpdate.objects.count(), stored_files(media_root)
        fault.stop()
        completed = _complete(fed_client, target)

        # Assert: the upload and its bytes wait for the retry, which makes the update; its file is all that is left.
        assert failed == (503, fault.body)
        assert rows == 0
        assert [name for name in left if name.startswith("updates/")] == []
        assert [name for name in left if name.startswith("uploads/")] == uploaded
        assert completed[0] == 201, completed
        update = ModelUpdate.objects.get()
        assert completed[1]["id"] == update.pk
        assert Upload.objects.get().update == update
        assert stored_files(media_root) == _update_files()


@pytest.fixture
def moto_server():
    server = MotoS3()
    yield server
    if server.running:
        server.stop()


@pytest.fixture
def s3(moto_server, monkeypatch, settings):
    url = f"http://{moto_server.host}:{moto_server.port}"
    client = store_model_data_in_s3(monkeypatch, settings, bucket=BUCKET, endpoint_url=url, location="models")
    yield client
    # moto keeps its buckets in this process: the next test starts from none.
    if not moto_server.running:
        moto_server.start()
    _remove_bucket(client)


def _bucket_keys(s3):
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def _remove_bucket(s3):
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        return
    for key in _bucket_keys(s3):
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_bucket(Bucket=BUCKET)


class TestS3:
    def test_a_json_update_with_s3_unreachable_is_a_503_leaving_nothing_and_succeeds_once_it_is_back(
        self, model, fed_client, s3, moto_server
    ):
        moto_server.stop()
        failed = _push(model, fed_client, [1.0, 2.0])
        rows = ModelUpdate.objects.count()
        moto_server.start()
        left = _bucket_keys(s3)
        accepted = _push(model, fed_client, [1.0, 2.0])

        assert failed[0] == 503
        assert failed[1]["detail"].startswith(UNREACHABLE)
        assert (rows, left) == (0, [])
        assert accepted[0] == 201, accepted
        assert _bucket_keys(s3) == [f"models/{name}" for name in _update_files()]

    def test_a_json_update_into_a_removed_bucket_is_a_503_and_succeeds_once_it_is_made_again(
        self, model, fed_client, s3
    ):
        _remove_bucket(s3)

        failed = _push(model, fed_client, [1.0, 2.0])
        rows = ModelUpdate.objects.count()
        s3.create_bucket(Bucket=BUCKET)
        accepted = _push(model, fed_client, [1.0, 2.0])

        assert failed == (503, {"detail": NO_BUCKET})
        assert rows == 0
        assert accepted[0] == 201, accepted
        assert _bucket_keys(s3) == [f"models/{name}" for name in _update_files()]

    def test_completing_an_upload_with_s3_unreachable_is_a_503_that_keeps_the_upload(
        self, model, fed_client, s3, moto_server
    ):
        # Prepare: the bytes are in the bucket, sent to the presigned URL.
        data = safetensors.numpy.save(_tensors(2))
        target = _make_upload(model, fed_client, data)
        request = urllib.request.Request(target["upload_url"], data=data, headers=target["headers"], method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        uploaded = _bucket_keys(s3)

        # Execute
        moto_server.stop()
        failed = _complete(fed_client, target)
        rows = ModelUpdate.objects.count()
        moto_server.start()
        left = _bucket_keys(s3)
        completed = _complete(fed_client, target)

        # Assert
        assert failed[0] == 503
        assert failed[1]["detail"].startswith(UNREACHABLE)
        assert (rows, left) == (0, uploaded)
        assert Upload.objects.filter(pk=target["id"]).exists()
        assert completed[0] == 201, completed
        assert _bucket_keys(s3) == [f"models/{name}" for name in _update_files()]


class TestS3Silent:
    """S3 accepting connections and never answering (a private subnet without the gateway endpoint, a brown-out):
    each route that reads or writes model data answers a JSON 503 naming S3 and its setting, after the bounded
    timeouts and retries of every FMA AWS client (``fma_core.aws``), the S3 storage's included."""

    @pytest.fixture
    def silence(self, s3, silent_endpoint, monkeypatch, settings, aws_settings):
        """Point every S3 client (the storage's and ``aws_client``'s) at the silent endpoint, from the next call."""
        # Short bounds keep the test quick; that the storage takes them at all is what is checked.
        aws_settings(AwsSettings(connect_timeout=0.5, read_timeout=0.5))

        def silence():
            monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
            aws_client.cache_clear()
            settings.STORAGES = {**settings.STORAGES}  # a new default storage, hence a new client

        return silence

    @pytest.fixture
    def stored_update(self, model, fed_client):
        status, update = _push(model, fed_client, [1.0, 2.0])
        assert status == 201, update
        return update

    def test_the_storage_client_has_the_bounded_timeouts_and_retries(self, s3, aws_settings):
        aws_settings(AwsSettings(read_timeout=1.5, max_attempts=3))
        config = default_storage.connection.meta.client.meta.config

        assert (config.connect_timeout, config.read_timeout, config.retries) == (
            2.0,
            1.5,
            {"total_max_attempts": 3, "mode": "standard"},
        )
        assert config.signature_version == "s3v4"

    def test_a_json_update_is_a_503_naming_s3_and_the_bucket_setting(self, model, fed_client, silence):
        silence()

        failed = _push(model, fed_client, [1.0, 2.0])

        assert_s3_unavailable(failed)
        assert ModelUpdate.objects.count() == 0

    def test_completing_an_upload_is_a_503_naming_s3_and_the_bucket_setting(self, model, fed_client, s3, silence):
        data = safetensors.numpy.save(_tensors(3))
        target = _make_upload(model, fed_client, data)
        request = urllib.request.Request(target["upload_url"], data=data, headers=target["headers"], method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        silence()

        failed = _complete(fed_client, target)

        assert_s3_unavailable(failed)
        assert Upload.objects.filter(pk=target["id"]).exists()

    @pytest.mark.parametrize("fmt", ["safetensors", "npz", "json"])
    def test_a_download_is_a_503_naming_s3_and_the_bucket_setting(self, fed_client, stored_update, silence, fmt):
        silence()

        failed = _call("GET", f"{UPDATES}{stored_update['id']}/data/", client=fed_client, query={"format": fmt})

        assert_s3_unavailable(failed)


def assert_s3_unavailable(answer):
    status, body = answer
    assert status == 503, body
    assert body["detail"].startswith(UNREACHABLE), body
    assert "FMA_MODEL_DATA_BUCKET" in body["detail"]
    assert "MEDIA_ROOT" not in body["detail"]


class TestLogs:
    """A storage that fails makes every request fail alike: each 503 is one JSON line an operator can search and
    count (the cause, the request ids), not a traceback; a 500 (a setting to fix) keeps its traceback."""

    @pytest.fixture(autouse=True)
    def _wsgi_ready(self):
        # The first request of a process sets Django up for WSGI, which configures logging anew and so removes the
        # handler pytest captures the test's records with: made before the test, not in it.
        service_initialization.handler(make_v2_event(path="/no-such-page/"), make_context())

    def _logged(self, caplog, model, fed_client):
        event = make_v2_event(
            method="POST",
            path=UPDATES,
            headers={"CLIENT-UUID": str(fed_client.uuid), "Content-Type": "application/json"},
            body=json.dumps({"federated_model": model.pk, "data": [1.0]}),
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            response = service_initialization.handler(event, make_context(request_id="lambda-request-7"))
        records = [record for record in caplog.records if record.levelno >= logging.WARNING]
        return response, event, records

    def test_a_503_is_one_json_line_with_its_cause_and_request_ids_and_no_traceback(
        self, model, fed_client, s3, moto_server, caplog
    ):
        moto_server.stop()

        response, event, records = self._logged(caplog, model, fed_client)

        assert response["statusCode"] == 503
        (record,) = records
        assert record.exc_info is None
        line = json.loads(record.getMessage())
        assert line.pop("cause").startswith("EndpointConnectionError: Could not connect to the endpoint URL")
        assert line == {
            "status": 503,
            "error": json.loads(response_body(response))["detail"],
            "request_id": "lambda-request-7",
            "api_request_id": event["requestContext"]["requestId"],
            "method": "POST",
            "path": UPDATES,
        }

    def test_a_500_is_logged_with_its_traceback(self, model, fed_client, s3, settings, caplog):
        # A deployment's mistake the start-up checks cannot see here (tests change settings after start-up).
        settings.FMA_AGGREGATION_TRIGGER = "celery"

        response, _, records = self._logged(caplog, model, fed_client)

        assert response["statusCode"] == 500
        assert json.loads(response_body(response)) == {
            "detail": "Unknown aggregation trigger 'celery' (setting FMA_AGGREGATION_TRIGGER); "
            "registered: lambda, local, none"
        }
        assert any(record.exc_info for record in records)
