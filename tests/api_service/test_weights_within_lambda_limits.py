"""Weights near Lambda's 6 MB through ``service_initialization.handler``, for every kind of event.

Binary bodies travel base64-encoded in the Lambda response: safetensors up to about 4.5 MB come back
inline, larger ones as a 303 to a download URL. Every event and response here is checked against 6 MB by
the ``within_lambda_payload_limits`` fixture (``tests/api_service/conftest.py``).
"""

import base64
import json

import numpy as np
import pytest
import safetensors.numpy

import service_initialization
from fma_core.serialization import Weights
from fma_django_connectors import services
from fma_django_connectors.storage.downloads import binary_body_limit
from tests.events import make_alb_event, make_context, make_v1_event, make_v2_event, response_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_test_connection")]

BUILDERS = {"v1": make_v1_event, "v2": make_v2_event, "alb": make_alb_event}
PASSWORD = "limits-password"
# Header and metadata of a one-tensor safetensors file, well under this.
HEADER_ROOM = 256


def _model_with(developer, parameters: int):
    weights = Weights(layers=(np.linspace(-1, 1, parameters, dtype=np.float32),), layered=True, names=("w",))
    return services.model_create(
        developer=developer, name="near", aggregator="avg_values_if_data", initial_model=weights
    )


def _get(build, path, query=None):
    basic = "Basic " + base64.b64encode(f"dev:{PASSWORD}".encode()).decode()
    event = build(path=path, query=query, headers={"Authorization": basic})
    return service_initialization.handler(event, make_context())


def _headers(response):
    single = response.get("headers") or {}
    multi = response.get("multiValueHeaders") or {}
    return {name.lower(): value for name, value in single.items()} | {
        name.lower(): values[-1] for name, values in multi.items()
    }


@pytest.fixture(params=list(BUILDERS))
def build(request):
    return BUILDERS[request.param]


@pytest.fixture
def developer(django_user_model):
    return django_user_model.objects.create_user("dev", password=PASSWORD)


def test_largest_inline_safetensors_fit_a_response(build, developer):
    parameters = (binary_body_limit() - HEADER_ROOM) // 4
    model = _model_with(developer, parameters)
    response = _get(build, f"/api/v1/models/{model.pk}/get_current_artifact/", {"format": "safetensors"})
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert safetensors.numpy.load(response_body(response))["w"].shape == (parameters,)
    assert len(json.dumps(response)) <= 6 * 1024 * 1024


def test_a_little_more_is_a_303(build, developer):
    model = _model_with(developer, binary_body_limit() // 4 + 1)
    response = _get(build, f"/api/v1/models/{model.pk}/get_current_artifact/", {"format": "safetensors"})
    assert response["statusCode"] == 303
    assert "/local-transfers/" in _headers(response)["location"]


def test_json_of_the_same_weights_is_a_413(build, developer):
    model = _model_with(developer, binary_body_limit() // 4 + 1)
    response = _get(build, f"/api/v1/models/{model.pk}/get_current_artifact/")
    assert response["statusCode"] == 413
    assert "?format=safetensors" in json.loads(response_body(response))["detail"]
