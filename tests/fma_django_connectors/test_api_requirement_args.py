"""``requirement_args`` sent as a JSON string, as upstream's example script does, is stored as what it holds."""

from __future__ import annotations

import pytest
from rest_framework import status

from fma_django_connectors.models import FederatedModel

MODELS = "/api/v1/models/"


def _create(api, requirement_args, requirement="require_x_updates"):
    body = {"name": "m", "aggregator": "avg_values_if_data", "requirement": requirement}
    return api.post(MODELS, {**body, "requirement_args": requirement_args}, format="json")


@pytest.mark.parametrize(
    ("requirement", "sent", "stored"),
    [
        ("require_x_updates", "3", 3),
        ("require_x_updates", "[3]", [3]),
        ("require_x_updates", '{"num_updates": 3}', {"num_updates": 3}),
        ("require_x_updates", 3, 3),
        ("all_clients", "null", None),
    ],
)
def test_a_string_holding_json_is_stored_as_its_value(developer_api, requirement, sent, stored):
    response = _create(developer_api, sent, requirement=requirement)

    assert response.status_code == status.HTTP_201_CREATED, response.json()
    assert response.json()["requirement_args"] == stored
    assert FederatedModel.objects.get(pk=response.json()["id"]).requirement_args == stored


def test_a_number_is_the_first_positional_argument_and_is_checked(developer_api):
    response = _create(developer_api, "0")

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "num_updates" in str(response.json()["requirement_args"])


@pytest.mark.parametrize("sent", ["three", '"3"', "true"])
def test_other_strings_are_refused_naming_the_field(developer_api, sent):
    response = _create(developer_api, sent)

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["requirement_args"] == [
        "requirement_args of require_x_updates must be a JSON list of positional arguments, "
        "a JSON object of keyword arguments or null, got a string"
    ]
    assert not FederatedModel.objects.exists()
