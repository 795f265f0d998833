"""Cold start shared by the Lambda entry modules: Django set up once, registering packages imported.

``DJANGO_SETTINGS_MODULE`` picks the deployment (default: the embedded ``settings_local``).
"""

from __future__ import annotations

import os
from importlib import import_module

import django
from django.conf import LazySettings

__all__ = ["setup_django"]


def setup_django() -> LazySettings:
    """Set Django up and import ``INSTALLED_PACKAGES`` so their handlers and connectors register; the settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "federated_learning_project.settings_local")
    django.setup()
    from django.conf import settings

    for package in settings.INSTALLED_PACKAGES:
        import_module(package)
    return settings
