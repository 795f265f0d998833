"""Connectors built from AGGREGATOR_SETTINGS names; bad settings fail naming the problem."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fma_core.connectors import factory
from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError
from tests.fma_core.connectors.memory import MEMORY_SETTINGS, MemoryMetadataConnector, MemoryModelDataConnector


def test_the_named_connectors_are_built_with_their_options_and_the_lease():
    settings = {
        **MEMORY_SETTINGS,
        "model_data_connector": {"type": "MemoryModelDataConnector", "prefix": "elsewhere"},
        "claim_lease_seconds": 60,
    }

    connector = connector_from_settings(settings)

    assert isinstance(connector.metadata, MemoryMetadataConnector)
    assert isinstance(connector.model_data, MemoryModelDataConnector)
    assert connector.model_data.options == {"prefix": "elsewhere"}
    assert connector.claim_lease == timedelta(seconds=60)
    assert connector.memory_budget_bytes == 1536 * 1024 * 1024


def test_the_lease_defaults_to_a_minute():
    # A running aggregation renews its claim (a heartbeat), so a short lease only shortens a dead run's hold.
    assert connector_from_settings(MEMORY_SETTINGS).claim_lease == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"aggregator_connector_type": "Nope"},
            r"Unknown aggregator connector 'Nope' \(setting AGGREGATOR_SETTINGS\[\"aggregator_connector_type\"\]\); "
            r"registered: .*MemoryAggConnector",
        ),
        (
            {"metadata_connector": {"type": "Nope"}},
            r"Unknown metadata connector 'Nope' \(setting AGGREGATOR_SETTINGS\[\"metadata_connector\"\]\[\"type\"\]\); "
            r"registered: .*MemoryMetadataConnector",
        ),
        (
            {"model_data_connector": {"type": "Nope"}},
            r"Unknown model data connector 'Nope' .*registered: .*MemoryModelDataConnector",
        ),
        (
            {"claim_lease_secs": 5, "colour": "red"},
            r"AGGREGATOR_SETTINGS has unknown keys \['claim_lease_secs', 'colour'\]; "
            r"allowed keys: .*claim_lease_seconds",
        ),
        (
            {"model_data_connector": {"type": "MemoryModelDataConnector", "bucket": "b"}},
            r"AGGREGATOR_SETTINGS\[\"model_data_connector\"\] for MemoryModelDataConnector has unknown keys "
            r"\['bucket'\]; allowed keys: \['prefix'\]",
        ),
        ({"metadata_connector": "MemoryMetadataConnector"}, r"must be a dict with a \"type\" name"),
        ({"claim_lease_seconds": 0}, r"claim_lease_seconds\"\] must be a positive number of seconds, not 0"),
        ({"claim_lease_seconds": "900"}, r"must be a positive number of seconds, not '900'"),
        ({"memory_budget_bytes": 0}, r"memory_budget_bytes\"\] must be a positive whole number of bytes, not 0"),
        ({"memory_budget_bytes": 1.5e9}, r"must be a positive whole number of bytes, not 1500000000.0"),
        ({"memory_budget_bytes": True}, r"must be a positive whole number of bytes, not True"),
    ],
)
def test_bad_settings_are_rejected_naming_the_setting(override, message):
    with pytest.raises(ConfigurationError, match=message):
        connector_from_settings({**MEMORY_SETTINGS, **override})


def test_settings_must_be_a_dict():
    with pytest.raises(ConfigurationError, match="AGGREGATOR_SETTINGS must be a dict, not list"):
        connector_from_settings(["MemoryAggConnector"])


def test_the_configured_settings_are_read_at_each_call(monkeypatch):
    current = {**MEMORY_SETTINGS, "claim_lease_seconds": 1}
    monkeypatch.setattr(factory, "_settings_source", None)
    factory.use_settings(lambda: current)
    assert connector_from_settings().claim_lease == timedelta(seconds=1)

    current["claim_lease_seconds"] = 2
    assert connector_from_settings().claim_lease == timedelta(seconds=2)


def test_without_configured_settings_the_error_says_what_to_do(monkeypatch):
    monkeypatch.setattr(factory, "_settings_source", None)
    with pytest.raises(ConfigurationError, match="No AGGREGATOR_SETTINGS configured"):
        connector_from_settings()
