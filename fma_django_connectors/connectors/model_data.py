"""``DjangoModelDataConnector``: weights in Django's storage (local disk, or S3 through django-storages)."""

from __future__ import annotations

from django.db.models.fields.files import FieldFile

from fma_core.connectors.base import ModelDataConnector
from fma_core.connectors.factory import model_data_connectors
from fma_core.serialization import Weights
from fma_core.tensors import TensorSource
from fma_django_connectors.models import FederatedModel, ModelAggregate, ModelUpdate
from fma_django_connectors.weights_storage import weights_delete, weights_load, weights_open, weights_save


def _stored_file(ref: str) -> FieldFile:
    # Every weights field (update data, aggregate result, artifact values, state) uses the same storage,
    # so a reference from any of them opens through one of them.
    return FieldFile(None, ModelUpdate._meta.get_field("data"), ref)


@model_data_connectors.register()
class DjangoModelDataConnector(ModelDataConnector):
    """Weights files addressed by their storage names."""

    def load_weights(self, ref: str) -> Weights:
        return weights_load(_stored_file(ref))

    def open_weights(self, ref: str) -> TensorSource:
        return weights_open(_stored_file(ref))

    def save_aggregate_result(self, model_id: int, weights: Weights) -> str:
        # An unsaved aggregate lends its field's upload_to; the metadata connector creates the row.
        aggregate = ModelAggregate(federated_model_id=model_id)
        weights_save(field=aggregate.result, weights=weights)
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
