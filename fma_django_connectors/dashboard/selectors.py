"""Reads of the dashboard: counts the database computes (subqueries, no query per row), lineage, chart series.

Which models a user sees comes from ``fma_django_connectors.selectors.model_list``, as in the API.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from fma_django_connectors import selectors
from fma_django_connectors.dashboard.charts import MetricSummary, summarize
from fma_django_connectors.models import ClientAggregateScore, FederatedModel, ModelAggregate, ModelUpdate

Status = ModelUpdate.Status

# Sort keys of the models list (``?sort=key`` or ``?sort=-key``) and the column each orders by.
MODEL_SORTS = {
    "name": "name",
    "aggregator": "aggregator",
    "clients": "client_count",
    "pending": "pending_count",
    "running": "running_count",
    "failed": "failed_count",
    "invalid": "invalid_count",
    "aggregate": "latest_aggregate_on",
    "state": "allow_aggregation",
    "created": "created_on",
}
DEFAULT_MODEL_SORT = "-created"

# Aggregates drawn on the chart: the newest ones, enough to follow a run without crowding the axis.
CHART_AGGREGATES = 50


def _count(queryset: QuerySet[Any], group: str) -> Coalesce:
    """The number of rows of ``queryset`` per ``group`` value, as a correlated subquery (0 when none)."""
    counted = queryset.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _updates_of_model(status: int) -> Coalesce:
    return _count(ModelUpdate.objects.filter(federated_model=OuterRef("pk"), status=status), "federated_model")


def model_overview(*, actor: Any) -> QuerySet[FederatedModel]:
    """The models ``actor`` may see, each with its registered clients, updates by status and newest aggregate.

    Every figure is a subquery of the one statement, so a page of models costs one query however many
    updates and aggregates they have (subqueries, not joins: joining updates and clients multiplies rows).
    """
    registrations = FederatedModel.clients.through.objects.filter(federatedmodel=OuterRef("pk"))
    newest = ModelAggregate.objects.filter(federated_model=OuterRef("pk")).order_by("-created_on", "-id")
    return (
        selectors.model_list(actor=actor)
        .prefetch_related(None)
        .select_related("current_artifact")
        .annotate(
            client_count=_count(registrations, "federatedmodel"),
            pending_count=_updates_of_model(Status.PENDING),
            running_count=_updates_of_model(Status.RUNNING),
            failed_count=_updates_of_model(Status.FAILED),
            invalid_count=_updates_of_model(Status.INVALID),
            latest_aggregate_id=Subquery(newest.values("pk")[:1]),
            latest_aggregate_on=Subquery(newest.values("created_on")[:1]),
        )
    )


def model_sort(sort: str | None) -> tuple[str, list[str]]:
    """The sort key in effect (an unknown one falls back to the default) and the ordering it means."""
    key = sort if sort and sort.lstrip("-") in MODEL_SORTS else DEFAULT_MODEL_SORT
    column = MODEL_SORTS[key.lstrip("-")]
    descending = key.startswith("-")
    return key, [f"-{column}" if descending else column, "-id" if descending else "id"]


def aggregate_lineage(*, model: FederatedModel) -> QuerySet[ModelAggregate]:
    """The model's aggregates, newest first, with their parent, the updates built into each and its scores.

    ``artifacts`` (the versions each was published as) is prefetched: one more query per page.
    """
    applied = ModelUpdate.objects.filter(applied_aggregate=OuterRef("pk"))
    scores = ClientAggregateScore.objects.filter(aggregate=OuterRef("pk"))
    return (
        model.aggregates.annotate(
            update_count=_count(applied, "applied_aggregate"),
            score_count=_count(scores, "aggregate"),
        )
        .prefetch_related("artifacts")
        .order_by("-created_on", "-id")
    )


def updates_by_client(*, model: FederatedModel) -> QuerySet[Any]:
    """Per client that sent updates to ``model``: counts by status, newest update, oldest still pending.

    Rows are dicts; the clients whose newest update is oldest (the stragglers) come first.
    """
    counts = {
        f"{status.name.lower()}_count": Count("pk", filter=Q(status=status))
        for status in Status  # every status, so a failing or invalid client shows
    }
    return (
        model.updates.order_by()
        .values("client_id")
        .annotate(
            **counts,
            newest_update=Max("created_on"),
            oldest_pending=Min("created_on", filter=Q(status=Status.PENDING)),
        )
        .order_by("newest_update", "client_id")
    )


def _numeric(value: Any) -> float | None:
    # JSON booleans are ints in Python; a metric is a finite number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def score_metrics(*, model: FederatedModel, limit: int = CHART_AGGREGATES) -> tuple[list[str], dict[int, Any]]:
    """The numeric keys present in the scores of the model's newest ``limit`` aggregates, and those scores.

    Returns the sorted keys and, per aggregate id (oldest first), the list of ``validation_results``
    documents. One query; the window bounds what it reads however long the model has run.
    """
    newest = list(model.aggregates.order_by("-created_on", "-id").values_list("pk", flat=True)[:limit])
    rows = ClientAggregateScore.objects.filter(aggregate_id__in=newest).values_list(
        "aggregate_id", "validation_results"
    )
    documents: dict[int, list[Any]] = defaultdict(list)
    keys: set[str] = set()
    for aggregate_id, results in rows:
        documents[aggregate_id].append(results)
        if isinstance(results, dict):
            keys.update(key for key, value in results.items() if _numeric(value) is not None)
    ordered = {aggregate_id: documents[aggregate_id] for aggregate_id in reversed(newest) if aggregate_id in documents}
    return sorted(keys), ordered


def metric_summaries(*, documents: dict[int, list[Any]], metric: str) -> list[MetricSummary]:
    """Per aggregate (in the order given), the mean and spread of ``metric`` over the clients that reported it."""
    summaries = []
    for aggregate_id, results in documents.items():
        values = [
            number
            for result in results
            if isinstance(result, dict) and (number := _numeric(result.get(metric))) is not None
        ]
        if values:
            summaries.append(summarize(aggregate_id, values))
    return summaries
