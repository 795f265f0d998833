"""Cold start shared by the Lambda entry modules: Django set up once.

``DJANGO_SETTINGS_MODULE`` picks the deployment (default: the embedded ``settings_local``). Setting Django up
runs ``FmaDjangoConnectorsConfig.ready``: the FMA settings are checked, and the handler and connectors
registered (``fma_django_connectors.registrations``).
"""

from __future__ import annotations

import os

import django

__all__ = ["setup_django"]


def setup_django() -> None:
    """Set Django up (once per process; later calls do nothing)."""
    # The one environment variable read outside the settings modules: it says which settings module to read.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "federated_learning_project.settings_local")
    django.setup()
