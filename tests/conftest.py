"""Shared fixtures and markers."""

import pytest
from django.conf import settings
from hypothesis import settings as hypothesis_settings

# No timed assertions in the suite (timings belong in bench/): Hypothesis' per-example deadline (200 ms) fails
# property tests at random on a busy machine, when one example happens to wait for the CPU.
hypothesis_settings.register_profile("fma", deadline=None)
hypothesis_settings.load_profile("fma")


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (FMA_TEST_DATABASE=postgres)")
    for item in items:
        if "requires_postgres" in item.keywords:
            item.add_marker(skip)
