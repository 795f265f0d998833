"""Errors outside the viewsets' own checks are JSON too, never an HTML page or a traceback."""

from __future__ import annotations

import pytest
from django.urls import path
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from fma_core.exceptions import ConfigurationError, InvalidArgumentsError, InvalidWeightsError


@api_view(["GET"])
@permission_classes([AllowAny])
def _raises(request, kind: str):
    errors = {
        "weights": InvalidWeightsError("layer 0 contains NaN or infinite values"),
        "arguments": InvalidArgumentsError("krum needs f < n/2"),
        "configuration": ConfigurationError("Unknown aggregator 'x'"),
        "bug": RuntimeError("secret internals"),
    }
    raise errors[kind]


urlpatterns = [path("raises/<str:kind>/", _raises)]
handler404 = "fma_django_connectors.exceptions.not_found"
handler500 = "fma_django_connectors.exceptions.server_error"


def test_unknown_path_is_json_404(db):
    response = APIClient().get("/no/such/path/")
    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json() == {"detail": "Not found."}


def test_unknown_api_path_is_json_404(db):
    response = APIClient().get("/api/v1/nothing_here/")
    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json() == {"detail": "Not found."}


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("weights", "layer 0 contains NaN or infinite values"),
        ("arguments", "krum needs f < n/2"),
        ("configuration", "Unknown aggregator 'x'"),
    ],
)
def test_core_errors_are_400(db, kind, detail):
    response = APIClient().get(f"/raises/{kind}/")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"detail": detail}


@pytest.mark.urls(__name__)
def test_unexpected_error_is_json_500_without_traceback(db):
    response = APIClient(raise_request_exception=False).get("/raises/bug/")
    assert response.status_code == status.HTTP_500_INTERNAL_SERVER_ERROR
    assert response.json() == {"detail": "A server error occurred."}
    assert b"secret internals" not in response.content


def test_admin_body_over_the_limit_is_json_413(db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = APIClient().post("/admin/login/", {"username": "x" * 200, "password": "y"}, format="multipart")
    assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert response.json() == {"detail": "Request body is larger than 100 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."}
