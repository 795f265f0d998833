"""Django implementations of the aggregation connectors; importing this package registers them.

It also makes Django's ``AGGREGATOR_SETTINGS`` the settings ``agg_service`` runs on by default.
"""

from django.conf import settings

from fma_core.connectors.factory import use_settings
from fma_django_connectors.connectors import aggregator, metadata, model_data

__all__ = ["aggregator", "metadata", "model_data"]

# Read at every use, so that changed settings (tests' override_settings) take effect.
use_settings(lambda: settings.AGGREGATOR_SETTINGS)
