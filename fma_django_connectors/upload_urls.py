"""Where the caller of ``POST /api/v1/uploads/`` sends the bytes: the body of its ``201`` answer."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from fma_django_connectors.models import Upload


def upload_target(*, request: Request, upload: Upload) -> dict[str, Any]:
    """``{"id", "upload_url", "method", "headers", "expires_at"}`` of a new upload."""
    return {
        "id": str(upload.pk),
        "upload_url": request.build_absolute_uri(f"/transfers/{upload.bytes_name}"),
        "method": "PUT",
        "headers": {"Content-Length": str(upload.size)},
        "expires_at": upload.expires_at.isoformat(),
    }
