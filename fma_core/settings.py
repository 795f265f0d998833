"""Settings dicts checked against their defaults: unknown keys are an error that names them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fma_core.exceptions import ConfigurationError

AGGREGATOR_DEFAULTS: dict[str, Any] = {
    # Registry names (fma_core.connectors.factory) of the connectors the workflow runs on.
    "aggregator_connector_type": "DjangoAggConnector",
    "metadata_connector": {"type": "DjangoMetadataConnector"},
    "model_data_connector": {"type": "DjangoModelDataConnector"},
    # Where the aggregator's secrets come from, and which ones it pulls at cold start.
    "secrets_manager": "aws_secrets",
    "secrets_name": [],
    # A claim neither made nor renewed for this long (an aggregation that died, e.g. a Lambda timeout) is taken
    # back. A running aggregation renews its claim every third of the lease as it reads the updates.
    "claim_lease_seconds": 60,
    # Working memory one aggregation may use for the layers it holds at once (fma_core.algorithms._maths):
    # 1.5 GiB leaves room, in a 3 GB Lambda, for the runtime, one result in the model's dtype and I/O buffers.
    "memory_budget_bytes": 1536 * 1024 * 1024,
}


def resolve_settings(name: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` completed with ``defaults``.

    Parameters
    ----------
    name
        The setting's name, used in error messages (e.g. ``"AGGREGATOR_SETTINGS"``).
    given
        What the deployer wrote; ``None`` means all defaults.
    defaults
        Every allowed key with its default value.

    Raises
    ------
    ConfigurationError
        ``given`` is not a dict, or holds keys ``defaults`` does not know (all of them are named).
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigurationError(f"{name} must be a dict, not {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigurationError(f"{name} has unknown keys {unknown}; allowed keys: {sorted(defaults)}")
    return {**defaults, **given}


def resolve_aggregator_settings(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``AGGREGATOR_SETTINGS`` completed with defaults and checked."""
    resolved = resolve_settings("AGGREGATOR_SETTINGS", given, AGGREGATOR_DEFAULTS)
    lease = resolved["claim_lease_seconds"]
    if isinstance(lease, bool) or not isinstance(lease, int | float) or lease <= 0:
        raise ConfigurationError(
            f'AGGREGATOR_SETTINGS["claim_lease_seconds"] must be a positive number of seconds, not {lease!r}'
        )
    budget = resolved["memory_budget_bytes"]
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigurationError(
            f'AGGREGATOR_SETTINGS["memory_budget_bytes"] must be a positive whole number of bytes, not {budget!r}'
        )
    for key in ("metadata_connector", "model_data_connector"):
        section = resolved[key]
        if not isinstance(section, Mapping) or not isinstance(section.get("type"), str):
            raise ConfigurationError(f'AGGREGATOR_SETTINGS["{key}"] must be a dict with a "type" name, not {section!r}')
    return resolved
