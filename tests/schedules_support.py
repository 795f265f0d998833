"""moto's EventBridge Scheduler holding one deployment's schedule group, and readers of the schedules in it.

``scheduler`` is a fixture (registered in tests/conftest.py): the settings of an ``eventbridge-scheduler``
deployment, and moto's client, with the group the deployment's stack would have created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.s3_storage import CREDENTIALS, REGION

AGGREGATOR_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:fma-aggregator"
GROUP = "fma"
ROLE_ARN = "arn:aws:iam::123456789012:role/fma-scheduler"


@pytest.fixture
def scheduler(monkeypatch: Any, settings: Any) -> Iterator[Any]:
    """moto's EventBridge Scheduler with the deployment's group, and the settings that use it."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings.FMA_SCHEDULER = "eventbridge-scheduler"
    settings.AGGREGATOR_LAMBDA_ARN = AGGREGATOR_ARN
    settings.FMA_SCHEDULE_EXPRESSION = "rate(1 minute)"
    settings.FMA_SCHEDULE_GROUP = GROUP
    settings.FMA_SCHEDULE_ROLE_ARN = ROLE_ARN
    with mock_aws():
        client = boto3.client("scheduler", region_name=REGION)
        # The stack creates the group; the service only puts schedules in it.
        client.create_schedule_group(Name=GROUP)
        yield client


def schedule_of(scheduler: Any, model_id: int, *, group: str = GROUP) -> dict[str, Any]:
    """State, expression and target of model ``model_id``'s schedule in ``group``."""
    # Imported here: tests/conftest.py imports this module before any test has asked for Django's models.
    from fma_django_connectors.aggregation.schedules import schedule_name

    found = scheduler.get_schedule(GroupName=group, Name=schedule_name(model_id))
    return {"state": found["State"], "schedule": found["ScheduleExpression"], "target": found["Target"]}


def schedule_names(scheduler: Any, *, group: str = GROUP) -> list[str]:
    """Names of the schedules in ``group``, sorted."""
    return sorted(
        item["Name"]
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        for item in page["Schedules"]
    )
