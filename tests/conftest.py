"""Shared fixtures and markers."""

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (FMA_TEST_DATABASE=postgres)")
    for item in items:
        if "requires_postgres" in item.keywords:
            item.add_marker(skip)
