"""Transfer URLs: S3 presigned URLs used against a moto S3 server with a plain HTTP client, as a client would;
the local backend's grants and streaming into storage (the local server serving them: tests/api_service)."""

from __future__ import annotations

import io
import time
import urllib.request
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from moto.server import ThreadedMotoServer

from fma_core.aws import aws_client
from fma_django_connectors.storage import transfers
from tests.s3_storage import store_model_data_in_s3

BUCKET = "fma-transfers-test"
BASE_URL = "http://service.example:8000/"


def _http(method, url, *, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, response.read()


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(moto_url, monkeypatch, settings):
    """The default storage is django-storages' S3Storage on a bucket of the moto server (under ``models/``)."""
    yield store_model_data_in_s3(monkeypatch, settings, bucket=BUCKET, endpoint_url=moto_url, location="models")
    aws_client.cache_clear()


class TestS3:
    def test_presigned_put_then_get(self, s3_storage):
        body = b"\x00\x01safetensors bytes" * 1000
        before = datetime.now(UTC)

        target = transfers.upload_url("updates/7.safetensors", size=len(body), expires_in=900, base_url=BASE_URL)
        status, _, _ = _http(target.method, target.url, body=body, headers=target.headers)
        url = transfers.download_url("updates/7.safetensors", expires_in=60, base_url=BASE_URL)
        get_status, _, downloaded = _http("GET", url)

        assert status == 200
        assert s3_storage.get_object(Bucket=BUCKET, Key="models/updates/7.safetensors")["Body"].read() == body
        assert (get_status, downloaded) == (200, body)
        assert target.method == "PUT"
        assert target.headers == {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
        assert 899 <= (target.expires_at - before).total_seconds() <= 901

    def test_upload_url_is_signature_v4_binding_the_length(self, s3_storage):
        target = transfers.upload_url("updates/8.safetensors", size=123, expires_in=900, base_url=BASE_URL)

        query = parse_qs(urlsplit(target.url).query)
        assert urlsplit(target.url).path == f"/{BUCKET}/models/updates/8.safetensors"
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["900"]
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")

    def test_download_as_a_named_file(self, s3_storage):
        s3_storage.put_object(Bucket=BUCKET, Key="models/aggregates/3.npz", Body=b"npz")

        url = transfers.download_url("aggregates/3.npz", expires_in=60, base_url=BASE_URL, filename="model-3.npz")
        _, headers, body = _http("GET", url)

        assert headers["Content-Disposition"] == 'attachment; filename="model-3.npz"'
        assert body == b"npz"


class TestArguments:
    @pytest.mark.parametrize("size", [-1, 1.5, True, "10"])
    def test_size_must_be_whole_bytes(self, size):
        with pytest.raises(ValueError, match="size must be a whole number of bytes"):
            transfers.upload_url("x", size=size, expires_in=60, base_url=BASE_URL)

    @pytest.mark.parametrize("expires_in", [0, -5, transfers.MAX_EXPIRES_IN + 1, 1.5])
    def test_expiry_within_s3s_bounds(self, expires_in):
        with pytest.raises(ValueError, match="expires_in must be 1 to 604800 seconds"):
            transfers.download_url("x", expires_in=expires_in, base_url=BASE_URL)


class TestLocal:
    def test_urls_are_the_services_own(self):
        target = transfers.upload_url("updates/1.bin", size=5, expires_in=60, base_url=BASE_URL)
        url = transfers.download_url("updates/1.bin", expires_in=60, base_url=BASE_URL.rstrip("/"))

        assert target.url.startswith("http://service.example:8000/local-transfers/")
        assert url.startswith("http://service.example:8000/local-transfers/")

    def test_grant_carries_name_method_size_and_filename(self):
        upload = _token(transfers.upload_url("updates/1.bin", size=5, expires_in=60, base_url=BASE_URL).url)
        download = _token(transfers.download_url("a/2.bin", expires_in=60, base_url=BASE_URL, filename="f.bin"))

        assert transfers.read_grant(upload, method="PUT") == transfers.LocalGrant("updates/1.bin", "PUT", 5, None)
        assert transfers.read_grant(download, method="GET") == transfers.LocalGrant("a/2.bin", "GET", None, "f.bin")

    def test_another_secret_key_does_not_verify(self, settings):
        token = _token(transfers.upload_url("updates/1.bin", size=5, expires_in=60, base_url=BASE_URL).url)
        settings.SECRET_KEY = "another key" * 5

        with pytest.raises(transfers.TransferRefused) as refused:
            transfers.read_grant(token, method="PUT")

        assert refused.value.status == 403

    def test_expired(self):
        target = transfers.upload_url("updates/1.bin", size=5, expires_in=1, base_url=BASE_URL)
        while time.time() < target.expires_at.timestamp():
            time.sleep(0.05)

        with pytest.raises(transfers.TransferRefused, match="This transfer URL expired at"):
            transfers.read_grant(_token(target.url), method="PUT")

    def test_received_body_is_stored(self, media_root):
        grant = transfers.LocalGrant("updates/9.bin", "PUT", 200_000, None)

        transfers.receive(grant, io.BytesIO(b"y" * 200_000 + b"next request"), 200_000)

        assert (media_root / "updates/9.bin").read_bytes() == b"y" * 200_000

    def test_short_body_leaves_nothing(self, media_root):
        grant = transfers.LocalGrant("updates/9.bin", "PUT", 200_000, None)

        with pytest.raises(transfers.TransferRefused, match="The body ended after 150000 of 200000 bytes"):
            transfers.receive(grant, io.BytesIO(b"y" * 150_000), 200_000)

        assert list(media_root.rglob("*.bin")) == []


def _token(url):
    return urlsplit(url).path.removeprefix(transfers.LOCAL_TRANSFER_PATH)
