"""Interfaces the aggregation workflow runs on: metadata, model data, and the connector binding both.

A metadata connector owns every read and write of rows (models, aggregates, update statuses); a
model-data connector owns every byte of weights. Implementations register by class name in
``fma_core.connectors.factory`` and are chosen by ``AGGREGATOR_SETTINGS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from fma_core.exceptions import CallerError, FMAError, OperatorError
from fma_core.serialization import Structure, Weights
from fma_core.settings import resolve_settings
from fma_core.tensors import TensorSource


class ModelNotFoundError(CallerError, LookupError):
    """The federated model asked for does not exist."""


class ClaimLostError(FMAError):
    """Claimed updates were taken back (their lease expired) before the aggregate was recorded."""


@dataclass(frozen=True)
class ModelConfig:
    """What the workflow needs to know about a federated model."""

    model_id: int
    aggregator: str
    aggregator_args: Any
    requirement: str
    requirement_args: Any
    furthest_base_agg: int | None
    allow_aggregation: bool
    registered_clients: frozenset[str]
    # Reference of the current artifact's weights, the starting point before any aggregate exists.
    current_artifact_ref: str | None
    # The structure every update has (that of the model's first weights); None before it has any.
    structure: Structure | None = None


@dataclass(frozen=True)
class AggregateRecord:
    """One aggregate of a model's lineage."""

    aggregate_id: int
    result_ref: str


@dataclass(frozen=True)
class ClaimKey:
    """One claim on a model's updates: when it was made, and the smallest id among the updates it holds.

    Concurrent runs never hold the same update, so two claims never share both, even if made at the same
    instant. A run stores its result under a name made from its claim, so that whoever takes an expired
    claim back knows the one file its dead run may have left, without listing the storage.
    """

    model_id: int
    claimed_at: datetime
    first_update_id: int


@dataclass(frozen=True)
class UpdateRecord:
    """A model update that may be aggregated (pending, or failed in an earlier run)."""

    update_id: int
    client_id: str
    base_aggregate_id: int | None
    num_examples: int
    data_ref: str
    created_on: datetime


class Connector:
    """Base of configurable connectors: options are checked against ``default_options``."""

    # Every option the connector accepts, with its default; anything else in the settings is an error.
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, setting: str = "connector", **options: Any) -> None:
        self.options = resolve_settings(f"{setting} for {type(self).__name__}", options, self.default_options)


class MetadataConnector(Connector, ABC):
    """Reads and writes the rows of the aggregation workflow.

    Status changes of updates are conditional: each one only touches rows still in the state the
    caller expects, which is what makes a claim exclusive and an aggregate exactly-once.
    """

    @abstractmethod
    def load_model(self, model_id: int) -> ModelConfig:
        """The model's configuration; raises ``ModelNotFoundError``."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def load_lineage(self, model_id: int, *, limit: int | None) -> list[AggregateRecord]:
        """The newest aggregate then its ancestors (following ``parent``), at most ``limit`` of them."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def load_candidate_updates(self, model_id: int) -> list[UpdateRecord]:
        """Updates of the model that are pending or failed, oldest first."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def reclaim_expired(self, model_id: int, *, claimed_before: datetime) -> list[ClaimKey]:
        """Return running updates whose claim was last made or renewed before ``claimed_before`` to pending.

        Returns the claims taken back (a running update without a claim time is taken back, naming no claim).
        A claim taken back was never recorded: recording completes all of a claim's updates at once.
        """
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def mark_invalid(self, update_ids: Sequence[int], *, reason: str, claimed_at: datetime | None = None) -> None:
        """Mark updates invalid (never aggregated), keeping ``reason`` with each.

        Without ``claimed_at`` only those still pending or failed; with it, only those held by that claim.
        """
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def renew_claim(self, update_ids: Sequence[int], *, claimed_at: datetime, renewed_at: datetime) -> None:
        """Extend this claim's lease from ``renewed_at`` (a heartbeat of a run still at work).

        Raises ``ClaimLostError`` when any of the updates is no longer held by this claim.
        """
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def claim_updates(self, model_id: int, update_ids: Sequence[int], *, claimed_at: datetime) -> list[int]:
        """Atomically mark those of the updates still pending or failed as running.

        Returns the ids claimed; an update claimed by a concurrent run is left out, never shared.
        ``claimed_at`` identifies this claim in the calls that settle it.
        """
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def release_claims(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        """Return updates of this claim to pending, untouched by aggregation."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def record_aggregate(
        self,
        model_id: int,
        *,
        result_ref: str,
        update_ids: Sequence[int],
        claimed_at: datetime,
        structure: Structure | None = None,
    ) -> int:
        """In one transaction: a new aggregate (parent: the newest one), linked updates marked complete.

        ``structure`` is the result's, kept with the aggregate so that nothing needs to read its file for it.

        Raises ``ClaimLostError`` and changes nothing when any update is no longer held by this claim.
        Returns the new aggregate's id.
        """
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def mark_failed(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        """Mark the updates of this claim as failed (a later run retries them)."""
        raise NotImplementedError  # pragma: no cover


class ModelDataConnector(Connector, ABC):
    """Reads and writes weights, addressed by the references the metadata connector hands out."""

    @abstractmethod
    def load_weights(self, ref: str) -> Weights:
        """The weights stored under ``ref`` (an update's data, an aggregate's result, an artifact)."""
        raise NotImplementedError  # pragma: no cover

    def open_weights(self, ref: str) -> TensorSource:
        """The weights stored under ``ref``, read one tensor at a time where the storage allows it.

        The default loads them whole; connectors over files override it to read lazily.
        """
        return self.load_weights(ref)

    @abstractmethod
    def aggregate_result_ref(self, claim: ClaimKey) -> str:
        """The reference the result of ``claim``'s aggregation is stored under: a function of the claim alone."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def save_aggregate_result(self, claim: ClaimKey, weights: Weights) -> str:
        """Store the result of ``claim``'s aggregation under ``aggregate_result_ref(claim)``; returns the reference."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def delete_weights(self, ref: str) -> None:
        """Remove stored weights, if any are stored under ``ref`` (a result whose aggregate was never recorded)."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def load_aggregator_state(self, model_id: int) -> Weights | None:
        """The state the model's aggregator left after its previous run, if any."""
        raise NotImplementedError  # pragma: no cover

    @abstractmethod
    def save_aggregator_state(self, model_id: int, state: Weights) -> None:
        """Keep the aggregator's state for the model's next run (replacing the previous one)."""
        raise NotImplementedError  # pragma: no cover


class AggregatorConnector:
    """The connectors one aggregation runs on, with the settings that govern it."""

    def __init__(
        self, *, metadata: MetadataConnector, model_data: ModelDataConnector, settings: Mapping[str, Any]
    ) -> None:
        self.metadata = metadata
        self.model_data = model_data
        self.claim_lease = timedelta(seconds=settings["claim_lease_seconds"])
        self.memory_budget_bytes: int = settings["memory_budget_bytes"]

    def is_infrastructure_failure(self, error: BaseException) -> bool:
        """Whether ``error`` is the deployment's fault (a database, a storage or a service that failed), not the
        data's: the workflow then leaves the updates pending and raises, so the failure is seen (docs/aggregation.md).

        The core knows only its own ``OperatorError``; connectors add the errors of what they run on.
        """
        return isinstance(error, OperatorError)
