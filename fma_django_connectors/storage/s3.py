"""``BoundedS3Storage``: django-storages' S3 storage with the timeouts and retries of every FMA AWS client.

django-storages builds its boto3 client with botocore's defaults (60 s to connect, 60 s to read, legacy
retries) unless it is given a ``client_config``. A request reaching a silent S3 (a private subnet without
the gateway endpoint, a brown-out) would then wait minutes and outlive API Gateway's 30 s, answering
nothing. This storage takes ``fma_core.aws.client_config`` instead, the one seam that bounds every AWS
call (``FMA_AWS_*`` variables), so such a request fails within seconds and is answered with a 503 naming
S3 and ``FMA_MODEL_DATA_BUCKET`` (``exceptions``). An explicit ``client_config`` option still wins.
"""

from __future__ import annotations

from typing import Any

from storages.backends.s3 import S3Storage

from fma_core.aws import client_config

__all__ = ["BoundedS3Storage"]


class BoundedS3Storage(S3Storage):
    """S3 storage whose client has FMA's bounded timeouts and retries (and signature version 4)."""

    def get_default_settings(self) -> dict[str, Any]:
        return {**super().get_default_settings(), "client_config": client_config(service="s3")}
