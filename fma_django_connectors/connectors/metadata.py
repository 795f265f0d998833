"""``DjangoMetadataConnector``: every row the aggregation workflow reads or writes, through the ORM.

Exactly-once rests on conditional writes. A claim moves updates from PENDING/FAILED to RUNNING
inside a transaction: on PostgreSQL the rows are locked with ``SELECT ... FOR UPDATE SKIP
LOCKED``, so a concurrent claim skips them instead of waiting; SQLite serialises writing
transactions (``transaction_mode: IMMEDIATE`` in the settings), and every UPDATE re-checks the
status it expects and its row count. Settling a claim (complete, failed, released) only touches
rows still RUNNING under that claim's ``claimed_at``, so a run whose lease expired cannot
overwrite what the run that reclaimed its updates did. Taking expired claims back locks their rows
(``SKIP LOCKED``: a row being recorded or settled is left to that transaction) and names each claim
taken back, so that the result file its dead run may have written can be deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import groupby

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from fma_core.connectors.base import (
    AggregateRecord,
    ClaimKey,
    ClaimLostError,
    MetadataConnector,
    ModelConfig,
    ModelNotFoundError,
    UpdateRecord,
)
from fma_core.serialization import Structure
from fma_django_connectors.models import FederatedModel, ModelAggregate, ModelUpdate
from fma_django_connectors.storage.weights_storage import structure_columns

Status = ModelUpdate.Status
_CLAIMABLE = (Status.PENDING, Status.FAILED)
_NEWEST_FIRST = ("-created_on", "-id")


def _claim_held(update_ids: Sequence[int], claimed_at: datetime) -> QuerySet[ModelUpdate]:
    return ModelUpdate.objects.filter(pk__in=update_ids, status=Status.RUNNING, claimed_at=claimed_at)


class DjangoMetadataConnector(MetadataConnector):
    """The workflow's metadata in the Django database (PostgreSQL or SQLite)."""

    def load_model(self, model_id: int) -> ModelConfig:
        try:
            model = FederatedModel.objects.select_related("current_artifact").get(pk=model_id)
        except FederatedModel.DoesNotExist:
            raise ModelNotFoundError(f"federated model {model_id} does not exist") from None
        return ModelConfig(
            model_id=model.pk,
            aggregator=model.aggregator,
            aggregator_args=model.aggregator_args,
            requirement=model.requirement,
            requirement_args=model.requirement_args,
            furthest_base_agg=model.furthest_base_agg,
            allow_aggregation=model.allow_aggregation,
            registered_clients=frozenset(str(uuid) for uuid in model.clients.values_list("uuid", flat=True)),
            current_artifact_ref=model.current_artifact.values.name if model.current_artifact else None,
            structure=None if model.structure is None else Structure.from_json(model.structure),
        )

    def load_lineage(self, model_id: int, *, limit: int | None) -> list[AggregateRecord]:
        # A parent is always older than its child, so one pass newest-first meets the whole chain in order
        # and stops as soon as it is complete.
        rows = (
            ModelAggregate.objects.filter(federated_model_id=model_id)
            .order_by(*_NEWEST_FIRST)
            .values_list("pk", "parent_id", "result")
        )
        lineage: list[AggregateRecord] = []
        wanted: int | None = None
        for pk, parent_id, result in rows.iterator(chunk_size=500):
            if lineage and pk != wanted:
                continue
            lineage.append(AggregateRecord(aggregate_id=pk, result_ref=result))
            wanted = parent_id
            if wanted is None or (limit is not None and len(lineage) >= limit):
                break
        return lineage

    def load_candidate_updates(self, model_id: int) -> list[UpdateRecord]:
        rows = (
            ModelUpdate.objects.filter(federated_model_id=model_id, status__in=_CLAIMABLE)
            .order_by("created_on", "id")
            .values_list("pk", "client_id", "base_aggregate_id", "num_examples", "data", "created_on")
        )
        return [
            UpdateRecord(
                update_id=pk,
                client_id=str(client_id),
                base_aggregate_id=base_aggregate_id,
                num_examples=num_examples,
                data_ref=data,
                created_on=created_on,
            )
            for pk, client_id, base_aggregate_id, num_examples, data, created_on in rows
        ]

    def reclaim_expired(self, model_id: int, *, claimed_before: datetime) -> list[ClaimKey]:
        # A RUNNING row without a claim time cannot be settled by anyone: take it back as well.
        expired = ModelUpdate.objects.filter(
            Q(renewed_at__lt=claimed_before)
            | Q(renewed_at__isnull=True, claimed_at__lt=claimed_before)
            | Q(claimed_at__isnull=True),
            federated_model_id=model_id,
            status=Status.RUNNING,
        ).order_by("claimed_at", "pk")
        with transaction.atomic():
            if connection.features.has_select_for_update_skip_locked:
                expired = expired.select_for_update(skip_locked=True)
            rows = list(expired.values_list("pk", "claimed_at"))
            ModelUpdate.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                status=Status.PENDING, claimed_at=None, renewed_at=None
            )
        # Ordered by claim then id: the first row of each claim holds its smallest id.
        return [
            ClaimKey(model_id=model_id, claimed_at=claimed_at, first_update_id=next(group)[0])
            for claimed_at, group in groupby(rows, key=lambda row: row[1])
            if claimed_at is not None
        ]

    def mark_invalid(self, update_ids: Sequence[int], *, reason: str, claimed_at: datetime | None = None) -> None:
        rows = (
            ModelUpdate.objects.filter(pk__in=update_ids, status__in=_CLAIMABLE)
            if claimed_at is None
            else _claim_held(update_ids, claimed_at)
        )
        rows.update(status=Status.INVALID, status_reason=reason)

    def renew_claim(self, update_ids: Sequence[int], *, claimed_at: datetime, renewed_at: datetime) -> None:
        renewed = _claim_held(update_ids, claimed_at).update(renewed_at=renewed_at)
        if renewed != len(update_ids):
            raise ClaimLostError(f"{len(update_ids) - renewed} of updates {list(update_ids)} are no longer held")

    def claim_updates(self, model_id: int, update_ids: Sequence[int], *, claimed_at: datetime) -> list[int]:
        with transaction.atomic():
            claimable = ModelUpdate.objects.filter(
                pk__in=update_ids, federated_model_id=model_id, status__in=_CLAIMABLE
            ).order_by("pk")
            if connection.features.has_select_for_update_skip_locked:
                claimable = claimable.select_for_update(skip_locked=True)
            ids = list(claimable.values_list("pk", flat=True))
            claimed = ModelUpdate.objects.filter(pk__in=ids, status__in=_CLAIMABLE).update(
                status=Status.RUNNING, claimed_at=claimed_at
            )
            if claimed != len(ids):
                # Only possible on a database that neither locks rows nor serialises writers: claim nothing.
                transaction.set_rollback(True)
                return []
        return ids

    def release_claims(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        _claim_held(update_ids, claimed_at).update(status=Status.PENDING, claimed_at=None, renewed_at=None)

    def record_aggregate(
        self,
        model_id: int,
        *,
        result_ref: str,
        update_ids: Sequence[int],
        claimed_at: datetime,
        structure: Structure | None = None,
    ) -> int:
        with transaction.atomic():
            # Locking the model row serialises recordings, so every aggregate's parent is the one before it.
            if not list(FederatedModel.objects.select_for_update().filter(pk=model_id).values_list("pk", flat=True)):
                raise ModelNotFoundError(f"federated model {model_id} was deleted during its aggregation")
            held = list(_claim_held(update_ids, claimed_at).select_for_update().values_list("pk", flat=True))
            if len(held) != len(update_ids):
                raise ClaimLostError(f"updates {sorted(set(update_ids) - set(held))} are no longer held by this claim")
            parent_id = (
                ModelAggregate.objects.filter(federated_model_id=model_id)
                .order_by(*_NEWEST_FIRST)
                .values_list("pk", flat=True)
                .first()
            )
            aggregate = ModelAggregate.objects.create(
                federated_model_id=model_id, parent_id=parent_id, result=result_ref, **structure_columns(structure)
            )
            ModelUpdate.objects.filter(pk__in=held).update(status=Status.COMPLETE, applied_aggregate=aggregate)
            if structure is not None:
                # A model whose first weights left no structure (an unreadable legacy file) takes its result's.
                FederatedModel.objects.filter(pk=model_id, structure__isnull=True).update(structure=structure.to_json())
        return aggregate.pk

    def mark_failed(self, update_ids: Sequence[int], *, claimed_at: datetime) -> None:
        _claim_held(update_ids, claimed_at).update(status=Status.FAILED)
