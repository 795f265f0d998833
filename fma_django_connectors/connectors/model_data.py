"""``DjangoModelDataConnector``: weights in Django's storage (local disk, or S3 through django-storages)."""

from __future__ import annotations

from datetime import UTC

from django.db.models.fields.files import FieldFile

from fma_core.connectors.base import ClaimKey, ModelDataConnector
from fma_core.serialization import Weights
from fma_core.tensors import TensorSource
from fma_django_connectors.models import FederatedModel, ModelAggregate, ModelUpdate
from fma_django_connectors.storage.weights_storage import (
    EXTENSION,
    weights_delete,
    weights_load,
    weights_open,
    weights_save,
)


def _stored_file(ref: str) -> FieldFile:
    # Every weights field (update data, aggregate result, artifact values, state) uses the same storage,
    # so a reference from any of them opens through one of them.
    return FieldFile(None, ModelUpdate._meta.get_field("data"), ref)


def _claim_stem(claim: ClaimKey) -> str:
    # For example 7-20261128T081125123456Z-42: model 7, claimed at that microsecond, update 42 its smallest id.
    return f"{claim.model_id}-{claim.claimed_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{claim.first_update_id}"


class DjangoModelDataConnector(ModelDataConnector):
    """Weights files addressed by their storage names."""

    def load_weights(self, ref: str) -> Weights:
        return weights_load(_stored_file(ref))

    def open_weights(self, ref: str) -> TensorSource:
        return weights_open(_stored_file(ref))

    def aggregate_result_ref(self, claim: ClaimKey) -> str:
        field = ModelAggregate._meta.get_field("result")
        return field.generate_filename(None, f"{_claim_stem(claim)}{EXTENSION}")

    def save_aggregate_result(self, claim: ClaimKey, weights: Weights) -> str:
        # An unsaved aggregate lends its field's upload_to; the metadata connector creates the row.
        aggregate = ModelAggregate(federated_model_id=claim.model_id)
        weights_save(field=aggregate.result, weights=weights, stem=_claim_stem(claim))
        return aggregate.result.name

    def delete_weights(self, ref: str) -> None:
        weights_delete(_stored_file(ref))

    def load_aggregator_state(self, model_id: int) -> Weights | None:
        model = FederatedModel.objects.only("aggregator_state").get(pk=model_id)
        return weights_load(model.aggregator_state) if model.aggregator_state else None

    def save_aggregator_state(self, model_id: int, state: Weights) -> None:
        model = FederatedModel.objects.only("aggregator_state").get(pk=model_id)
        previous = model.aggregator_state.name
        weights_save(field=model.aggregator_state, weights=state)
        # update() leaves last_modified alone: new state is not an edit of the model by its developer.
        FederatedModel.objects.filter(pk=model_id).update(aggregator_state=model.aggregator_state.name)
        if previous:
            weights_delete(_stored_file(previous))
