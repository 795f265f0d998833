"""The aggregation workflow: load → select → require → claim → aggregate → store → mark.

``agg_service(model_id)`` runs one aggregation of a model and returns the new aggregate's id, or
``None`` when nothing was aggregated. Its body is three named steps: ``_claim`` (load the model,
select the eligible updates, check the requirement, claim them), ``_aggregate_and_record``
(aggregate, check the result is finite, store it, mark the updates COMPLETE) and ``_release``
(settle a claim whose aggregation did not end in an aggregate). It is safe to run any number of
times concurrently: updates are claimed atomically, so no update is used twice, and none is lost:

- an update whose aggregation fails is marked FAILED and is eligible again in the next run;
- a failure of the infrastructure (the database, the storage, an AWS service: what the connector calls one)
  is not the updates' fault: the claim is released (or taken back when its lease expires, if the database
  is what failed) and the error is raised, so that the run fails where an operator sees it (a failed Lambda
  invocation, its retries, the on-failure queue and its alarm);
- updates too few for the aggregator's arguments (Krum's ``2f + 3``) go back to PENDING;
- a result holding NaN or ±Inf is never stored: the update(s) that produce it on their own are marked
  INVALID with the reason (``status_reason``), the others go back to PENDING;
- a running aggregation renews its claim (a heartbeat) as it reads the updates; a claim not renewed
  for ``claim_lease_seconds`` (a run that died) is returned to PENDING, and the result file that run may
  have written (its name is made from the claim) is deleted;
- an update based on an aggregate outside the model's ``furthest_base_agg`` window is marked
  INVALID, so it never holds a requirement back;
- an update from a client no longer registered to the model stays PENDING, counted by nothing,
  and is used if the client registers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fma_core.algorithms import call_aggregator, call_requirement
from fma_core.connectors.base import (
    AggregateRecord,
    AggregatorConnector,
    ClaimKey,
    ClaimLostError,
    ModelConfig,
    ModelDataConnector,
    UpdateRecord,
)
from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import InvalidArgumentsError, InvalidWeightsError, NonFiniteResultError
from fma_core.serialization import Weights
from fma_core.tensors import TensorSource, check_finite
from fma_core.types import AggregationContext, AggregationResult, ClientUpdate, PendingSummary

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

    def __init__(
        self, candidates: Sequence[_Candidate], model_data: ModelDataConnector, heartbeat: Callable[[], None]
    ) -> None:
        self._candidates = tuple(candidates)
        self._model_data = model_data
        self._heartbeat = heartbeat
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
            # Reading updates is where an aggregation spends its time, once per layer group: renew the claim.
            self._heartbeat()
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


@dataclass
class _Claim:
    """Updates this run holds, and what it renews the claim with while it works."""

    model: ModelConfig
    lineage: Sequence[AggregateRecord]
    updates: Sequence[_Candidate]
    claimed_at: datetime
    connector: AggregatorConnector
    renewed_at: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.renewed_at = self.claimed_at

    @property
    def update_ids(self) -> list[int]:
        return [candidate.record.update_id for candidate in self.updates]

    @property
    def key(self) -> ClaimKey:
        return ClaimKey(model_id=self.model.model_id, claimed_at=self.claimed_at, first_update_id=min(self.update_ids))

    def heartbeat(self) -> None:
        """Renew the claim when a third of the lease has passed since the last renewal.

        Raises ``ClaimLostError`` when another run took the updates back (this run was too slow): better to stop
        now than at the end.
        """
        now = datetime.now(UTC)
        if now - self.renewed_at < self.connector.claim_lease / 3:
            return
        self.connector.metadata.renew_claim(self.update_ids, claimed_at=self.claimed_at, renewed_at=now)
        self.renewed_at = now


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
        the aggregation failed (then its updates are FAILED, or INVALID for a non-finite result, and the
        error logged).

    Raises
    ------
    ModelNotFoundError
        No such model.
    Exception
        A failure of the infrastructure (``connector.is_infrastructure_failure``), as raised: the claimed updates
        stay pending for the next run.
    ConfigurationError, InvalidArgumentsError
        The model's requirement or its arguments are unusable (nothing is claimed then).
    """
    connector = connector or connector_from_settings()
    claim = _claim(connector, model_id)
    if claim is None:
        return None
    try:
        aggregate_id, result = _aggregate_and_record(claim)
    except Exception as error:
        _release(claim, error)
        if connector.is_infrastructure_failure(error):
            raise
        return None
    if result.state is not None:
        try:
            connector.model_data.save_aggregator_state(model_id, result.state)
        except Exception:
            # The aggregate stands; the next run starts from the previous state instead.
            logger.exception(
                "model %s: aggregate %s recorded but its aggregator state was not kept", model_id, aggregate_id
            )
    logger.info("model %s: aggregate %s made of update(s) %s", model_id, aggregate_id, claim.update_ids)
    return aggregate_id


def _claim(connector: AggregatorConnector, model_id: int) -> _Claim | None:
    """Load, select, require, claim: the updates this run will aggregate, held by it; None if there is nothing to do."""
    metadata = connector.metadata
    model = metadata.load_model(model_id)
    if not model.allow_aggregation:
        logger.info("model %s: aggregation is paused (allow_aggregation is false)", model_id)
        return None

    now = datetime.now(UTC)
    _reclaim_expired(connector, model_id, now)

    lineage = metadata.load_lineage(model_id, limit=model.furthest_base_agg)
    candidates, too_stale = _select(model, lineage, metadata.load_candidate_updates(model_id))
    if too_stale:
        metadata.mark_invalid(
            too_stale,
            reason=f"based on an aggregate more than furthest_base_agg = {model.furthest_base_agg} aggregates old",
        )
        logger.info("model %s: update(s) %s are beyond furthest_base_agg, marked invalid", model_id, too_stale)
    if not _requirement_met(model, candidates, now):
        return None

    claimed_ids = set(
        metadata.claim_updates(model_id, [candidate.record.update_id for candidate in candidates], claimed_at=now)
    )
    claim = _Claim(
        model=model,
        lineage=lineage,
        updates=[candidate for candidate in candidates if candidate.record.update_id in claimed_ids],
        claimed_at=now,
        connector=connector,
    )
    if not claim.updates:
        return None
    # A concurrent run may have taken part of the updates: what is left must still satisfy the requirement.
    if len(claim.updates) < len(candidates) and not _requirement_met(model, claim.updates, now):
        metadata.release_claims(claim.update_ids, claimed_at=now)
        return None
    return claim


def _reclaim_expired(connector: AggregatorConnector, model_id: int, now: datetime) -> None:
    """Take back the claims that outlived the lease, and delete the result each one's dead run may have written."""
    expired = connector.metadata.reclaim_expired(model_id, claimed_before=now - connector.claim_lease)
    for claim in expired:
        logger.warning(
            "model %s: took back the claim made at %s, which outlived the lease", model_id, claim.claimed_at.isoformat()
        )
        # Taken back, the claim can no longer be recorded (recording checks it holds every update), so a result
        # stored under its name is nobody's: its run died after writing it, or will delete it on ClaimLostError.
        ref = connector.model_data.aggregate_result_ref(claim)
        try:
            connector.model_data.delete_weights(ref)
        except Exception:
            # The updates are back whatever happens to the file: aggregation goes on; the log names the file.
            logger.exception("model %s: could not delete %s, the result of a claim taken back", model_id, ref)


def _aggregate(claim: _Claim, updates: Sequence[_Candidate]) -> AggregationResult:
    """The model's aggregator over ``updates``, its result (weights and state) checked to be finite.

    Raises
    ------
    NonFiniteResultError
        The result or the state holds NaN or ±Inf.
    """
    model, model_data = claim.model, claim.connector.model_data
    current_ref = claim.lineage[0].result_ref if claim.lineage else model.current_artifact_ref
    context = AggregationContext(
        current=None if current_ref is None else model_data.load_weights(current_ref),
        state=model_data.load_aggregator_state(model.model_id),
        structure=model.structure,
        memory_budget_bytes=claim.connector.memory_budget_bytes,
    )
    stream = _StoredUpdates(updates, model_data, claim.heartbeat)
    result = call_aggregator(model.aggregator, stream, context, model.aggregator_args)
    for what, weights in (("result", result.weights), ("state", result.state)):
        if weights is None:
            continue
        try:
            check_finite(weights)
        except InvalidWeightsError as error:
            raise NonFiniteResultError(
                f"model {model.model_id}: {model.aggregator} gave a non-finite {what} ({error})"
            ) from None
    return result


def _aggregate_and_record(claim: _Claim) -> tuple[int, AggregationResult]:
    """Aggregate, store the result, record the aggregate with its updates COMPLETE; the aggregate's id and result."""
    model_id, model_data = claim.model.model_id, claim.connector.model_data
    result = _aggregate(claim, claim.updates)
    # The result may have taken a while since the last update was read (a robust statistic of a large group).
    claim.heartbeat()
    result_ref = model_data.save_aggregate_result(claim.key, result.weights)
    try:
        aggregate_id = claim.connector.metadata.record_aggregate(
            model_id,
            result_ref=result_ref,
            update_ids=claim.update_ids,
            claimed_at=claim.claimed_at,
            structure=result.weights.structure,
        )
    except BaseException:
        model_data.delete_weights(result_ref)
        raise
    return aggregate_id, result


def _release(claim: _Claim, error: Exception) -> None:
    """Settle a claim whose aggregation raised ``error``: pending again, invalid, or failed, by whose fault."""
    metadata, model_id, update_ids = claim.connector.metadata, claim.model.model_id, claim.update_ids
    if claim.connector.is_infrastructure_failure(error):
        # Not the updates' fault: they wait for the next run. The error is raised by the caller (and logged there,
        # with its traceback, by whoever runs the workflow), so one line says what became of the updates.
        logger.error("model %s: aggregation stopped (%s); update(s) %s stay pending", model_id, error, update_ids)
        try:
            metadata.release_claims(update_ids, claimed_at=claim.claimed_at)
        except Exception:
            logger.warning(
                "model %s: could not release update(s) %s; they are taken back when the claim's lease expires",
                model_id,
                update_ids,
            )
    elif isinstance(error, InvalidArgumentsError):
        # The arguments do not suit this many updates (Krum with too few): the updates are not at fault,
        # they wait for more to arrive.
        logger.warning("model %s: %s; update(s) %s stay pending", model_id, error, update_ids)
        metadata.release_claims(update_ids, claimed_at=claim.claimed_at)
    elif isinstance(error, ClaimLostError):
        logger.warning(
            "model %s: the claim on update(s) %s expired before the aggregate was recorded", model_id, update_ids
        )
    elif isinstance(error, NonFiniteResultError):
        _reject_non_finite(claim, error)
    else:
        logger.error(
            "model %s: aggregation of update(s) %s failed; they are marked failed", model_id, update_ids, exc_info=error
        )
        metadata.mark_failed(update_ids, claimed_at=claim.claimed_at)


def _reject_non_finite(claim: _Claim, error: NonFiniteResultError) -> None:
    """Mark INVALID the updates whose aggregation alone is not finite, and release the others.

    When no single update is at fault (only their combination overflows), all of them are marked INVALID: left
    pending, they would fail every run of the model after this one.
    """
    metadata = claim.connector.metadata
    culprits: list[int] = []
    for candidate in claim.updates:
        try:
            _aggregate(claim, [candidate])
        except NonFiniteResultError:
            culprits.append(candidate.record.update_id)
        except Exception:
            # An update the aggregator cannot take alone (Krum needs 2f + 3) is not shown to be at fault.
            continue
    if not culprits:
        culprits = claim.update_ids
    reason = f"{error}; this update is never aggregated"
    metadata.mark_invalid(culprits, reason=reason, claimed_at=claim.claimed_at)
    innocent = [update_id for update_id in claim.update_ids if update_id not in culprits]
    metadata.release_claims(innocent, claimed_at=claim.claimed_at)
    logger.error("%s; update(s) %s marked invalid, %s pending again", error, culprits, innocent)
