"""Where the caller of ``POST /api/v1/uploads/`` sends the bytes: the body of its ``201`` answer."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from fma_django_connectors.conf import fma_settings
from fma_django_connectors.models import Upload
from fma_django_connectors.storage import transfers


def upload_target(*, request: Request, upload: Upload) -> dict[str, Any]:
    """``{"id", "upload_url", "method", "headers", "expires_at"}`` of a new upload.

    The URL takes exactly ``size`` bytes (a presigned S3 PUT, or the local server's signed route).
    """
    target = transfers.upload_url(
        upload.bytes_name,
        size=upload.size,
        expires_in=fma_settings.FMA_UPLOAD_LIFETIME_SECONDS,
        base_url=request.build_absolute_uri("/"),
        upload_id=str(upload.pk),
    )
    return {
        "id": str(upload.pk),
        "upload_url": target.url,
        "method": target.method,
        "headers": target.headers,
        "expires_at": upload.expires_at.isoformat(),
    }
