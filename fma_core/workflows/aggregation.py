"""The aggregation workflow: load → select → require → claim → aggregate → store → mark.

``agg_service(model_id)`` runs one aggregation of a model and returns the new aggregate's id, or
``None`` when nothing was aggregated. It is safe to run any number of times concurrently: updates
are claimed atomically, so no update is used twice, and none is lost:

- an update whose aggregation fails is marked FAILED and is eligible again in the next run;
- updates too few for the aggregator's arguments (Krum's ``2f + 3``) go back to PENDING;
- a claim older than ``claim_lease_seconds`` (a run that died) is returned to PENDING;
- an update based on an aggregate outside the model's ``furthest_base_agg`` window is marked
  INVALID, so it never holds a requirement back;
- an update from a client no longer registered to the model stays PENDING, counted by nothing,
  and is used if the client registers again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fma_core.algorithms import call_aggregator, call_requirement
from fma_core.connectors.base import (
    AggregateRecord,
    AggregatorConnector,
    ClaimLostError,
    ModelConfig,
    ModelDataConnector,
    UpdateRecord,
)
from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import InvalidArgumentsError
from fma_core.serialization import Weights
from fma_core.tensors import TensorSource
from fma_core.types import AggregationContext, ClientUpdate, PendingSummary

__all__ = ["agg_service"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Candidate:
    record: UpdateRecord
    staleness: int


class _StoredUpdates:
    """An ``UpdateStream`` that opens each update's weights only when the aggregator reaches it.

    Opening reads a file's header; its tensors are read when the aggregator asks for them. Weights a
    connector can only load whole (legacy files) are loaded again on each pass rather than kept.
    """

    def __init__(self, candidates: Sequence[_Candidate], model_data: ModelDataConnector) -> None:
        self._candidates = tuple(candidates)
        self._model_data = model_data
        # Opened updates, kept for the later passes (one per layer group): a lazy source holds only its
        # header, so N of them are small, and each file's header is read once.
        self._opened: dict[int, TensorSource] = {}

    def __len__(self) -> int:
        return len(self._candidates)

    def _open(self, position: int) -> TensorSource:
        source = self._opened.get(position)
        if source is None:
            source = self._model_data.open_weights(self._candidates[position].record.data_ref)
            if not isinstance(source, Weights):
                self._opened[position] = source
        return source

    def __iter__(self) -> Iterator[ClientUpdate]:
        for position, candidate in enumerate(self._candidates):
            yield ClientUpdate(
                weights=self._open(position),
                num_examples=candidate.record.num_examples,
                staleness=candidate.staleness,
            )


def _staleness(update: UpdateRecord, positions: dict[int, int], lineage_length: int) -> int:
    """Aggregates made since the update's base; an update on no (or an unknown) base is older than all."""
    if update.base_aggregate_id is None:
        return lineage_length
    return positions.get(update.base_aggregate_id, lineage_length)


def _select(
    model: ModelConfig, lineage: Sequence[AggregateRecord], updates: Sequence[UpdateRecord]
) -> tuple[list[_Candidate], list[int]]:
    """Eligible updates with their staleness, and the ids of those too stale ever to be used."""
    positions = {aggregate.aggregate_id: index for index, aggregate in enumerate(lineage)}
    eligible: list[_Candidate] = []
    too_stale: list[int] = []
    for update in updates:
        if update.client_id not in model.registered_clients:
            continue
        staleness = _staleness(update, positions, len(lineage))
        if model.furthest_base_agg is not None and staleness >= model.furthest_base_agg:
            too_stale.append(update.update_id)
        else:
            eligible.append(_Candidate(record=update, staleness=staleness))
    return eligible, too_stale


def _summary(model: ModelConfig, candidates: Sequence[_Candidate], now: datetime) -> PendingSummary:
    oldest = min((candidate.record.created_on for candidate in candidates), default=None)
    return PendingSummary(
        registered_clients=len(model.registered_clients),
        pending_updates=len(candidates),
        clients_with_pending=len({candidate.record.client_id for candidate in candidates}),
        oldest_pending_age_seconds=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
    )


def _requirement_met(model: ModelConfig, candidates: Sequence[_Candidate], now: datetime) -> bool:
    if not candidates:
        return False
    if not model.requirement:
        return True
    return call_requirement(model.requirement, _summary(model, candidates, now), model.requirement_args)


def agg_service(model_id: int, *, connector: AggregatorConnector | None = None) -> int | None:
    """Aggregate the model's eligible updates if its requirement is met.

    Parameters
    ----------
    model_id
        The federated model to aggregate.
    connector
        The connectors to run on; default: those ``AGGREGATOR_SETTINGS`` names.

    Returns
    -------
    int or None
        The new aggregate's id; None when the model is paused, its requirement is not met, another run
        holds the updates, the updates are too few for the aggregator's arguments (they stay PENDING), or
        the aggregation failed (then its updates are FAILED and the error logged).

    Raises
    ------
    ModelNotFoundError
        No such model.
    ConfigurationError, InvalidArgumentsError
        The model's requirement or its arguments are unusable (nothing is claimed then).
    """
    connector = connector or connector_from_settings()
    metadata, model_data = connector.metadata, connector.model_data
    model = metadata.load_model(model_id)
    if not model.allow_aggregation:
        logger.info("model %s: aggregation is paused (allow_aggregation is false)", model_id)
        return None

    now = datetime.now(UTC)
    reclaimed = metadata.reclaim_expired(model_id, claimed_before=now - connector.claim_lease)
    if reclaimed:
        logger.warning("model %s: took back %d update(s) whose claim outlived the lease", model_id, reclaimed)

    lineage = metadata.load_lineage(model_id, limit=model.furthest_base_agg)
    candidates, too_stale = _select(model, lineage, metadata.load_candidate_updates(model_id))
    if too_stale:
        metadata.mark_invalid(too_stale)
        logger.info("model %s: update(s) %s are beyond furthest_base_agg, marked invalid", model_id, too_stale)
    if not _requirement_met(model, candidates, now):
        return None

    claimed_ids = set(
        metadata.claim_updates(model_id, [candidate.record.update_id for candidate in candidates], claimed_at=now)
    )
    claimed = [candidate for candidate in candidates if candidate.record.update_id in claimed_ids]
    if not claimed:
        return None
    claimed_ids_list = [candidate.record.update_id for candidate in claimed]
    # A concurrent run may have taken part of the updates: what is left must still satisfy the requirement.
    if len(claimed) < len(candidates) and not _requirement_met(model, claimed, now):
        metadata.release_claims(claimed_ids_list, claimed_at=now)
        return None

    try:
        current_ref = lineage[0].result_ref if lineage else model.current_artifact_ref
        context = AggregationContext(
            current=None if current_ref is None else model_data.load_weights(current_ref),
            state=model_data.load_aggregator_state(model_id),
            structure=model.structure,
            memory_budget_bytes=connector.memory_budget_bytes,
        )
        result = call_aggregator(model.aggregator, _StoredUpdates(claimed, model_data), context, model.aggregator_args)
        result_ref = model_data.save_aggregate_result(model_id, result.weights)
        try:
            aggregate_id = metadata.record_aggregate(
                model_id,
                result_ref=result_ref,
                update_ids=claimed_ids_list,
                claimed_at=now,
                structure=result.weights.structure,
            )
        except BaseException:
            model_data.delete_weights(result_ref)
            raise
    except InvalidArgumentsError as error:
        # The arguments do not suit this many updates (Krum with too few): the updates are not at fault,
        # they wait for more to arrive.
        logger.warning("model %s: %s; update(s) %s stay pending", model_id, error, claimed_ids_list)
        metadata.release_claims(claimed_ids_list, claimed_at=now)
        return None
    except ClaimLostError:
        logger.warning(
            "model %s: the claim on update(s) %s expired before the aggregate was recorded", model_id, claimed_ids_list
        )
        return None
    except Exception:
        logger.exception(
            "model %s: aggregation of update(s) %s failed; they are marked failed", model_id, claimed_ids_list
        )
        metadata.mark_failed(claimed_ids_list, claimed_at=now)
        return None

    if result.state is not None:
        try:
            model_data.save_aggregator_state(model_id, result.state)
        except Exception:
            # The aggregate stands; the next run starts from the previous state instead.
            logger.exception(
                "model %s: aggregate %s recorded but its aggregator state was not kept", model_id, aggregate_id
            )
    logger.info("model %s: aggregate %s made of update(s) %s", model_id, aggregate_id, claimed_ids_list)
    return aggregate_id
