"""What this package plugs into the core, in one place: called once at start-up (``FmaDjangoConnectorsConfig.ready``).

The core looks implementations up by the names the settings give (``API_SERVICE_SETTINGS["handler"]``,
``AGGREGATOR_SETTINGS``' connector types); here they are registered under those names, and the names the
settings give are checked against the registries, so a wrong one stops the start naming the setting.
"""

from __future__ import annotations

__all__ = ["register"]


def register() -> None:
    """Register the handler and the connectors, make ``fma_settings.AGGREGATOR_SETTINGS`` the aggregation's
    settings, and check every registry name the settings give.

    Raises
    ------
    ConfigurationError
        A setting names a handler, trigger or scheduler that is not registered; the message lists the choices.
    """
    from fma_core.connectors.factory import (
        aggregator_connectors,
        metadata_connectors,
        model_data_connectors,
        use_settings,
    )
    from fma_core.handlers import handlers
    from fma_django_connectors.aggregation import schedules, triggers
    from fma_django_connectors.conf import fma_settings
    from fma_django_connectors.connectors.aggregator import DjangoAggConnector
    from fma_django_connectors.connectors.metadata import DjangoMetadataConnector
    from fma_django_connectors.connectors.model_data import DjangoModelDataConnector
    from fma_django_connectors.gateway.lambda_handler import django_lambda_handler

    handlers.register()(django_lambda_handler)
    aggregator_connectors.register()(DjangoAggConnector)
    metadata_connectors.register()(DjangoMetadataConnector)
    model_data_connectors.register()(DjangoModelDataConnector)
    # Read at every use, so that changed settings (tests' override_settings) take effect.
    use_settings(lambda: fma_settings.AGGREGATOR_SETTINGS)

    # Fail at start-up, not at the first request or update that needs the name.
    handlers.get(fma_settings.API_SERVICE_SETTINGS["handler"], setting='API_SERVICE_SETTINGS["handler"]')
    triggers.trigger_for(fma_settings.FMA_AGGREGATION_TRIGGER)
    schedules.schedulers.get(fma_settings.FMA_SCHEDULER, setting="FMA_SCHEDULER")
