"""moto's S3 as the default storage of the test process, with the options ``settings_remote`` gives it."""

from __future__ import annotations

from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from fma_core.aws import aws_client

REGION = "us-east-1"
# What boto3 needs to sign requests to moto; nothing reaches AWS.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}


def moto_environment(endpoint_url: str) -> dict[str, str]:
    """The variables that point boto3, in this process or in one started with them, at a moto server."""
    return {"AWS_ENDPOINT_URL": endpoint_url, **CREDENTIALS}


def store_model_data_in_s3(
    monkeypatch: Any, settings: Any, *, bucket: str, endpoint_url: str | None = None, **options: Any
) -> Any:
    """Create ``bucket`` and make it the default storage; returns an S3 client on it.

    ``endpoint_url`` names a moto server; without it the calls go to moto's in-process mock, which the caller
    has started (``mock_aws``). ``options`` add to the storage's (``location``, ``file_overwrite``).
    """
    environment = moto_environment(endpoint_url) if endpoint_url else CREDENTIALS
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if endpoint_url is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_client.cache_clear()
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "fma_django_connectors.storage.s3.BoundedS3Storage",
            "OPTIONS": {"bucket_name": bucket, "default_acl": None, **options},
        },
    }
    return client


class MotoS3:
    """A moto S3 server of one test alone, stopped and started again at the same address (its buckets are kept
    in this process, as S3 keeps them while it is unreachable)."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self.running = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.stop()
        self.running = False

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.running = True
