"""Errors outside the viewsets' own checks are JSON too, never an HTML page or a traceback."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from django.urls import path
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from fma_core.connectors.base import ModelNotFoundError
from fma_core.exceptions import ConfigurationError, InvalidArgumentsError, InvalidWeightsError
from fma_django_connectors.aggregation.schedules import ScheduleUnavailableError
from secrets_managers import SecretUnavailableError


@api_view(["GET"])
@permission_classes([AllowAny])
def _raises(request, kind: str):
    errors = {
        "weights": InvalidWeightsError("layer 0 contains NaN or infinite values"),
        "arguments": InvalidArgumentsError("krum needs f < n/2"),
        "model": ModelNotFoundError("federated model 7 does not exist"),
        "configuration": ConfigurationError("Unknown aggregator 'x' (setting AGGREGATOR_SETTINGS)"),
        "secret": SecretUnavailableError("Secret 'fma/db' could not be read: AWS Secrets Manager is unreachable"),
        "schedule": ScheduleUnavailableError("Could not update the aggregation schedule fma/model-7: down"),
        "s3-unreachable": EndpointConnectionError(endpoint_url="https://s3.amazonaws.com/bucket/key"),
        "s3-refused": ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"),
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
        ("model", "federated model 7 does not exist"),
    ],
)
def test_caller_errors_are_400(db, kind, detail):
    response = APIClient().get(f"/raises/{kind}/")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"detail": detail}


@pytest.mark.urls(__name__)
def test_a_configuration_error_is_a_json_500_naming_the_setting(db):
    response = APIClient().get("/raises/configuration/")
    assert response.status_code == status.HTTP_500_INTERNAL_SERVER_ERROR
    assert response.json() == {"detail": "Unknown aggregator 'x' (setting AGGREGATOR_SETTINGS)"}


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("secret", "Secret 'fma/db' could not be read: AWS Secrets Manager is unreachable"),
        ("schedule", "Could not update the aggregation schedule fma/model-7: down"),
        (
            "s3-unreachable",
            "Could not read or write model data: AWS S3 is unreachable (Could not connect to the endpoint URL: "
            '"https://s3.amazonaws.com/bucket/key"); check the network route to it (VPC endpoint or NAT) and '
            "FMA_MODEL_DATA_BUCKET",
        ),
        (
            "s3-refused",
            "Could not read or write model data: AWS S3 refused the call: AccessDenied Access Denied "
            "(check FMA_MODEL_DATA_BUCKET and the IAM role)",
        ),
    ],
)
def test_an_unavailable_dependency_is_a_json_503_naming_it(db, kind, detail):
    response = APIClient().get(f"/raises/{kind}/")
    assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
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
