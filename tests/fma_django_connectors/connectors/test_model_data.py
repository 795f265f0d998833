"""DjangoModelDataConnector: weights files in Django storage, by reference."""

from __future__ import annotations

import numpy as np
import pytest

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import parse_weights
from fma_django_connectors.connectors.model_data import DjangoModelDataConnector
from fma_django_connectors.models import FederatedModel
from tests.fma_django_connectors.workflow_support import make_model, make_update

pytestmark = pytest.mark.django_db

connector = DjangoModelDataConnector()


def test_an_updates_data_loads_by_its_reference():
    update = make_update(make_model(), [[1, 2], [3.5]])

    weights = connector.load_weights(update.data.name)

    assert weights.layered
    assert [layer.tolist() for layer in weights.layers] == [[1, 2], [3.5]]


def test_a_saved_result_is_a_new_file_that_can_be_deleted(media_root):
    model = make_model()

    ref = connector.save_aggregate_result(model.pk, parse_weights([0.5, 1.5]))

    assert ref.startswith("aggregates/")
    assert (media_root / ref).is_file()
    assert connector.load_weights(ref).layers[0].tolist() == [0.5, 1.5]
    connector.delete_weights(ref)
    assert not (media_root / ref).exists()


def test_unreadable_weights_are_an_error_naming_the_problem(media_root):
    ref = connector.save_aggregate_result(make_model().pk, parse_weights([1.0]))
    (media_root / ref).write_bytes(b"garbage")

    with pytest.raises(InvalidWeightsError, match="stored weights are unreadable"):
        connector.load_weights(ref)


def test_aggregator_state_is_replaced_and_the_old_file_removed(media_root):
    model = make_model()
    assert connector.load_aggregator_state(model.pk) is None

    connector.save_aggregator_state(model.pk, parse_weights([[1.0], [2.0, 3.0]]))
    first = FederatedModel.objects.get(pk=model.pk).aggregator_state.name
    connector.save_aggregator_state(model.pk, parse_weights([[4.0], [5.0, 6.0]]))
    second = FederatedModel.objects.get(pk=model.pk).aggregator_state.name

    state = connector.load_aggregator_state(model.pk)
    np.testing.assert_array_equal(state.layers[1], [5.0, 6.0])
    assert first != second
    assert not (media_root / first).exists()
    assert (media_root / second).is_file()
