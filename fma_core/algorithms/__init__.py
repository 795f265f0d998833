"""Aggregation algorithms and requirements, registered by name; importing this package registers them all.

A model names its aggregator (``aggregator`` + ``aggregator_args``) and requirement (``requirement`` +
``requirement_args``); ``validate_*_args`` check them when the model is saved, ``call_*`` run them.
See ``docs/aggregators.md`` for each algorithm and its arguments.
"""

# Imported for their registrations.
from fma_core.algorithms import fedavg, fedbuff, fedopt, krum, mean, median, readiness, trimmed_mean  # noqa: F401
from fma_core.algorithms._base import (
    Range,
    aggregators,
    call_aggregator,
    call_requirement,
    requirements,
    validate_aggregator_args,
    validate_requirement_args,
)

__all__ = [
    "Range",
    "aggregators",
    "call_aggregator",
    "call_requirement",
    "requirements",
    "validate_aggregator_args",
    "validate_requirement_args",
]
