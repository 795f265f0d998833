"""Builders of models, updates and aggregates with real weights files, for the aggregation tests."""

from __future__ import annotations

import itertools
from datetime import datetime

from django.contrib.auth import get_user_model

from fma_core.connectors.base import ClaimKey
from fma_core.serialization import parse_weights, weights_to_jsonable
from fma_django_connectors.connectors.metadata import DjangoMetadataConnector
from fma_django_connectors.connectors.model_data import DjangoModelDataConnector
from fma_django_connectors.models import Client, FederatedModel, ModelAggregate, ModelUpdate
from fma_django_connectors.storage.weights_storage import weights_load, weights_save

_names = itertools.count()


def make_model(*, clients: int = 3, **fields) -> FederatedModel:
    """A model that allows aggregation (mean of the updates, no requirement) with registered clients."""
    developer = get_user_model().objects.create_user(username=f"developer-{next(_names)}")
    model = FederatedModel.objects.create(
        **{"name": "model", "developer": developer, "aggregator": "avg_values_if_data", "allow_aggregation": True}
        | fields
    )
    model.clients.add(*(Client.objects.create() for _ in range(clients)))
    return model


def make_update(model: FederatedModel, values, *, client: Client | None = None, **fields) -> ModelUpdate:
    update = ModelUpdate(federated_model=model, client=client or model.clients.first(), **fields)
    weights_save(field=update.data, weights=parse_weights(values))
    update.save()
    return update


def make_aggregate(model: FederatedModel, values, *, parent: ModelAggregate | None = None) -> ModelAggregate:
    aggregate = ModelAggregate(federated_model=model, parent=parent)
    weights_save(field=aggregate.result, weights=parse_weights(values))
    aggregate.save()
    return aggregate


def result_of(aggregate: ModelAggregate) -> list:
    """The aggregate's result as the JSON document a client would get."""
    jsonable = weights_to_jsonable(weights_load(aggregate.result))
    return [layer.tolist() for layer in jsonable] if isinstance(jsonable, list) else jsonable.tolist()


def statuses(*updates: ModelUpdate) -> list[int]:
    return [ModelUpdate.objects.get(pk=update.pk).status for update in updates]


def run_killed_before_recording(
    model: FederatedModel, updates: list[ModelUpdate], *, claimed_at: datetime, values
) -> str:
    """The state a run killed between storing its result and recording the aggregate leaves; the result's name.

    The run's own connector calls: its claim on ``updates`` made at ``claimed_at`` (never renewed since), and
    ``values`` stored as the claim's result.
    """
    claimed = DjangoMetadataConnector().claim_updates(model.pk, [u.pk for u in updates], claimed_at=claimed_at)
    assert sorted(claimed) == sorted(u.pk for u in updates)
    claim = ClaimKey(model_id=model.pk, claimed_at=claimed_at, first_update_id=min(claimed))
    return DjangoModelDataConnector().save_aggregate_result(claim, parse_weights(values))
