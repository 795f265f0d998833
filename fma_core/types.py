"""What aggregators and requirements take and return; the workflow builds on exactly these types.

An aggregator is ``(updates: UpdateStream, *, context: AggregationContext, **aggregator_args) -> AggregationResult``.
A requirement is ``(summary: PendingSummary, **requirement_args) -> bool``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from fma_core.serialization import Structure, Weights
from fma_core.tensors import TensorSource


@dataclass(frozen=True)
class ClientUpdate:
    """One model update as an aggregator sees it.

    Attributes
    ----------
    weights : Weights or TensorSource
        The update's weights: in memory, or read one tensor at a time from storage (``fma_core.tensors``).
    num_examples : int
        How many training examples the client used (≥ 1); the weight of the update in ``fed_avg``.
    staleness : int
        Aggregates made between the update's ``base_aggregate`` and the newest one (0 when it is based on the
        newest aggregate or on none).
    """

    weights: Weights | TensorSource
    num_examples: int = 1
    staleness: int = 0


class UpdateStream(Protocol):
    """Updates loaded lazily, one at a time; iterable more than once (robust aggregators need two passes)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[ClientUpdate]: ...


class InMemoryUpdates:
    """An ``UpdateStream`` over updates already in memory (tests, benchmarks, small callers)."""

    def __init__(self, updates: Sequence[ClientUpdate]) -> None:
        self._updates = tuple(updates)

    def __len__(self) -> int:
        return len(self._updates)

    def __iter__(self) -> Iterator[ClientUpdate]:
        return iter(self._updates)


@dataclass(frozen=True)
class AggregationContext:
    """What an aggregator knows besides the updates.

    Attributes
    ----------
    current : Weights or None
        The global model the round starts from: the newest aggregate, else the current artifact, else None.
    state : Weights or None
        State the previous run of this model's aggregator returned (FedOpt moments), else None.
    structure : Structure or None
        The model's structure; its float dtypes are the result's (None: the first update's).
    memory_budget_bytes : int or None
        Bound on the working memory of the aggregation: layers are aggregated in groups that fit it
        (``fma_core.algorithms._maths``). None: all layers in one group.
    """

    current: Weights | None = None
    state: Weights | None = None
    structure: Structure | None = None
    memory_budget_bytes: int | None = None


@dataclass(frozen=True)
class AggregationResult:
    """An aggregator's output.

    Attributes
    ----------
    weights : Weights
        The new global model.
    state : Weights or None
        State to persist for the model and hand back next time as ``AggregationContext.state``.
    """

    weights: Weights
    state: Weights | None = None


@dataclass(frozen=True)
class PendingSummary:
    """What a requirement decides on.

    Attributes
    ----------
    registered_clients : int
        Clients registered to the model.
    pending_updates : int
        Eligible pending updates.
    clients_with_pending : int
        Distinct registered clients that have an eligible pending update.
    oldest_pending_age_seconds : float or None
        How long the oldest eligible pending update has waited; None when there is none.
    """

    registered_clients: int
    pending_updates: int
    clients_with_pending: int
    oldest_pending_age_seconds: float | None = None


# Registered signatures. Each aggregator and requirement takes keyword arguments of its own (a model's
# ``aggregator_args`` / ``requirement_args``), which a Protocol with ``**kwargs`` would not admit, so the
# aliases fix the return type only; the workflow calls ``aggregator(updates, context=..., **args)`` and
# ``requirement(summary, **args)``.
Aggregator = Callable[..., AggregationResult]
Requirement = Callable[..., bool]
