"""In-memory metadata and model-data connectors: the connector contract without a database.

They keep the same conditional status rules a database connector must keep, so the workflow's
tests exercise its real branches.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fma_core.connectors.base import (
    AggregateRecord,
    AggregatorConnector,
    ClaimKey,
    ClaimLostError,
    MetadataConnector,
    ModelConfig,
    ModelDataConnector,
    ModelNotFoundError,
    UpdateRecord,
)
from fma_core.connectors.factory import aggregator_connectors, metadata_connectors, model_data_connectors
from fma_core.serialization import Weights

PENDING, RUNNING, COMPLETE, FAILED, INVALID = range(5)
CLAIMABLE = (PENDING, FAILED)


@dataclass
class StoredModel:
    model_id: int
    aggregator: str = "avg_values_if_data"
    aggregator_args: object = None
    requirement: str = ""
    requirement_args: object = None
    furthest_base_agg: int | None = None
    allow_aggregation: bool = True
    clients: set[str] = field(default_factory=set)
    current_artifact_ref: str | None = None


@dataclass
class StoredAggregate:
    aggregate_id: int
    model_id: int
    parent_id: int | None
    result_ref: str


@dataclass
class StoredUpdate:
    update_id: int
    model_id: int
    client_id: str
    data_ref: str
    base_aggregate_id: int | None = None
    num_examples: int = 1
    status: int = PENDING
    claimed_at: datetime | None = None
    renewed_at: datetime | None = None
    status_reason: str = ""
    applied_aggregate_id: int | None = None
    created_on: datetime = field(default_factory=lambda: datetime.now(UTC))


@metadata_connectors.register()
class MemoryMetadataConnector(MetadataConnector):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.models: dict[int, StoredModel] = {}
        self.aggregates: list[StoredAggregate] = []  # oldest first
        self.updates: dict[int, StoredUpdate] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def load_model(self, model_id: int) -> ModelConfig:
        try:
            model = self.models[model_id]
        except KeyError:
            raise ModelNotFoundError(f"federated model {model_id} does not exist") from None
        return ModelConfig(
            model_id=model.model_id,
            aggregator=model.aggregator,
            aggregator_args=model.aggregator_args,
            requirement=model.requirement,
            requirement_args=model.requirement_args,
            furthest_base_agg=model.furthest_base_agg,
            allow_aggregation=model.allow_aggregation,
            registered_clients=frozenset(model.clients),
            current_artifact_ref=model.current_artifact_ref,
        )

    def load_lineage(self, model_id: int, *, limit: int | None) -> list[AggregateRecord]:
        by_id = {aggregate.aggregate_id: aggregate for aggregate in self.aggregates if aggregate.model_id == model_id}
        newest = next((a for a in reversed(self.aggregates) if a.model_id == model_id), None)
        lineage = []
        while newest is not None and (limit is None or len(lineage) < limit):
            lineage.append(AggregateRecord(aggregate_id=newest.aggregate_id, result_ref=newest.result_ref))
            newest = by_id.get(newest.parent_id)
        return lineage

    def load_candidate_updates(self, model_id: int) -> list[UpdateRecord]:
        return [
            UpdateRecord(
                update_id=update.update_id,
                client_id=update.client_id,
                base_aggregate_id=update.base_aggregate_id,
                num_examples=update.num_examples,
                data_ref=update.data_ref,
                created_on=update.created_on,
            )
            for update in sorted(self.updates.values(), key=lambda u: (u.created_on, u.update_id))
            if update.model_id == model_id and update.status in CLAIMABLE
        ]

    def reclaim_expired(self, model_id: int, *, claimed_before: datetime) -> list[ClaimKey]:
        expired = [
            update
            for update in self.updates.values()
            if update.model_id == model_id
            and update.status == RUNNING
            and (update.claimed_at is None or (update.renewed_at or update.claimed_at) < claimed_before)
        ]
        first_ids: dict[datetime, int] = {}
        for update in expired:
            if update.claimed_at is not None:
                first_ids[update.claimed_at] = min(update.update_id, first_ids.get(update.claimed_at, update.update_id))
            update.status, update.claimed_at, update.renewed_at = PENDING, None, None
        return [
            ClaimKey(model_id=model_id, claimed_at=claimed_at, first_update_id=first_id)
            for claimed_at, first_id in sorted(first_ids.items())
        ]

    def mark_invalid(self, update_ids: Sequence[int], *, reason: str, claimed_at: datetime | None = None) -> None:
        chosen = self._with_status(update_ids, CLAIMABLE) if claimed_at is None else self._held(update_ids, claimed_at)
        for update in chosen:
            update.status, update.status_reason = INVALID, reason

    def renew_claim(self, update_ids: Sequence[int], *, claimed_at: datetime, renewed_at: datetime) -> None:
        held = self._held(update_ids, claimed_at)
        if len(held) != len(update_ids):
            raise ClaimLostError("updates are no longer held by this claim")
        for update in held:
            update.renewed_at = renewed_at

    def claim_updates(self, model_id: int, update_ids: Sequence[int], *, claimed_at: datetime) -> list[int]:
        claimed = [u for u in self._with_status(update_ids, CLAIMABLE) if u.model_id == model_id]
        for update in claimed:
            update.status, update.claimed_at = RUNNING, claimed_at
        return [update.update_id for update in claimed]

    def release_claims(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        for update in self._held(update_ids, claimed_at):
            update.status, update.claimed_at, update.renewed_at = PENDING, None, None

    def record_aggregate(
        self, model_id: int, *, result_ref: str, update_ids: Sequence[int], claimed_at: datetime, structure=None
    ) -> int:
        held = self._held(update_ids, claimed_at)
        if len(held) != len(update_ids):
            raise ClaimLostError("updates are no longer held by this claim")
        newest = next((a for a in reversed(self.aggregates) if a.model_id == model_id), None)
        aggregate = StoredAggregate(
            aggregate_id=self.next_id(),
            model_id=model_id,
            parent_id=None if newest is None else newest.aggregate_id,
            result_ref=result_ref,
        )
        self.aggregates.append(aggregate)
        for update in held:
            update.status, update.applied_aggregate_id = COMPLETE, aggregate.aggregate_id
        return aggregate.aggregate_id

    def mark_failed(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        for update in self._held(update_ids, claimed_at):
            update.status = FAILED

    def _with_status(self, update_ids: Sequence[int], statuses: Sequence[int]) -> list[StoredUpdate]:
        return [self.updates[i] for i in update_ids if i in self.updates and self.updates[i].status in statuses]

    def _held(self, update_ids: Sequence[int], claimed_at: datetime) -> list[StoredUpdate]:
        return [u for u in self._with_status(update_ids, (RUNNING,)) if u.claimed_at == claimed_at]


@model_data_connectors.register()
class MemoryModelDataConnector(ModelDataConnector):
    default_options = {"prefix": "memory"}

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.files: dict[str, Weights] = {}
        self.states: dict[int, Weights] = {}
        self._names = itertools.count(1)

    def store(self, weights: Weights) -> str:
        ref = f"{self.options['prefix']}/{next(self._names)}"
        self.files[ref] = weights
        return ref

    def load_weights(self, ref: str) -> Weights:
        try:
            return self.files[ref]
        except KeyError:
            raise OSError(f"no stored weights named {ref!r}") from None

    def aggregate_result_ref(self, claim: ClaimKey) -> str:
        stem = f"{claim.model_id}-{claim.claimed_at.isoformat()}-{claim.first_update_id}"
        return f"{self.options['prefix']}/aggregates/{stem}"

    def save_aggregate_result(self, claim: ClaimKey, weights: Weights) -> str:
        ref = self.aggregate_result_ref(claim)
        self.files[ref] = weights
        return ref

    def delete_weights(self, ref: str) -> None:
        self.files.pop(ref, None)

    def load_aggregator_state(self, model_id: int) -> Weights | None:
        return self.states.get(model_id)

    def save_aggregator_state(self, model_id: int, state: Weights) -> None:
        self.states[model_id] = state


aggregator_connectors.register("MemoryAggConnector")(AggregatorConnector)

MEMORY_SETTINGS = {
    "aggregator_connector_type": "MemoryAggConnector",
    "metadata_connector": {"type": "MemoryMetadataConnector"},
    "model_data_connector": {"type": "MemoryModelDataConnector"},
}
