"""Connectors built from the names in ``AGGREGATOR_SETTINGS``.

Implementations register their class here (``@metadata_connectors.register()``); an unknown name
fails with the setting it came from and the registered choices. Where the settings come from is
up to the framework in use: it calls ``use_settings`` once with a function returning the dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fma_core.connectors.base import AggregatorConnector, MetadataConnector, ModelDataConnector
from fma_core.exceptions import ConfigurationError
from fma_core.registry import Registry
from fma_core.settings import resolve_aggregator_settings

aggregator_connectors: Registry[type[AggregatorConnector]] = Registry("aggregator connector")
metadata_connectors: Registry[type[MetadataConnector]] = Registry("metadata connector")
model_data_connectors: Registry[type[ModelDataConnector]] = Registry("model data connector")

SettingsSource = Callable[[], Mapping[str, Any]]
_settings_source: SettingsSource | None = None


def use_settings(source: SettingsSource) -> None:
    """Make ``source()`` the ``AGGREGATOR_SETTINGS`` that ``connector_from_settings()`` reads by default."""
    global _settings_source
    _settings_source = source


def connector_from_settings(settings: Mapping[str, Any] | None = None) -> AggregatorConnector:
    """The aggregator connector ``settings`` (default: the configured ``AGGREGATOR_SETTINGS``) names.

    Raises
    ------
    ConfigurationError
        No settings were given or configured, a key is unknown, or a connector name is not registered.
    """
    if settings is None:
        if _settings_source is None:
            raise ConfigurationError(
                "No AGGREGATOR_SETTINGS configured: import a connector package (e.g. fma_django_connectors) "
                "or pass the settings explicitly"
            )
        settings = _settings_source()
    resolved = resolve_aggregator_settings(settings)
    metadata = _build_section(resolved, "metadata_connector", metadata_connectors)
    model_data = _build_section(resolved, "model_data_connector", model_data_connectors)
    connector_class = aggregator_connectors.get(
        resolved["aggregator_connector_type"], setting='AGGREGATOR_SETTINGS["aggregator_connector_type"]'
    )
    return connector_class(metadata=metadata, model_data=model_data, settings=resolved)


def _build_section(resolved: Mapping[str, Any], key: str, registry: Registry[Any]) -> Any:
    setting = f'AGGREGATOR_SETTINGS["{key}"]'
    options = dict(resolved[key])
    connector_class = registry.get(options.pop("type"), setting=f'{setting}["type"]')
    return connector_class(setting=setting, **options)
