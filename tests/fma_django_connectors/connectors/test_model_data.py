"""DjangoModelDataConnector: weights files in Django storage, by reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import boto3
import numpy as np
import pytest
import safetensors.numpy
from moto import mock_aws

from fma_core.aws import aws_client
from fma_core.connectors.base import ClaimKey
from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Weights, parse_weights, weights_to_json
from fma_core.tensors import SafetensorsTensors
from fma_django_connectors.connectors.model_data import DjangoModelDataConnector
from fma_django_connectors.models import FederatedModel
from tests.fma_django_connectors.workflow_support import make_model, make_update

pytestmark = pytest.mark.django_db

connector = DjangoModelDataConnector()


def claim_of(model, first_update_id=1, claimed_at=None):
    return ClaimKey(model_id=model.pk, claimed_at=claimed_at or datetime.now(UTC), first_update_id=first_update_id)


def test_an_updates_data_loads_by_its_reference():
    update = make_update(make_model(), [[1, 2], [3.5]])

    weights = connector.load_weights(update.data.name)

    assert weights.layered
    assert [layer.tolist() for layer in weights.layers] == [[1, 2], [3.5]]


def test_a_saved_result_is_a_file_named_by_its_claim_that_can_be_deleted(media_root):
    model = make_model()
    claim = claim_of(model, first_update_id=42, claimed_at=datetime(2026, 11, 28, 8, 11, 25, 123456, tzinfo=UTC))

    ref = connector.save_aggregate_result(claim, parse_weights([0.5, 1.5]))

    assert (
        ref == connector.aggregate_result_ref(claim) == f"aggregates/{model.pk}-20261128T081125123456Z-42.safetensors"
    )
    assert (media_root / ref).is_file()
    assert connector.load_weights(ref).layers[0].tolist() == [0.5, 1.5]
    connector.delete_weights(ref)
    assert not (media_root / ref).exists()
    connector.delete_weights(ref)  # nothing left to delete is no error


def test_a_claims_result_name_does_not_depend_on_the_time_zone_of_its_claim_time():
    model = make_model()
    utc = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

    assert connector.aggregate_result_ref(claim_of(model, claimed_at=utc)) == connector.aggregate_result_ref(
        claim_of(model, claimed_at=utc.astimezone(ZoneInfo("Europe/Paris")))
    )


def test_unreadable_weights_are_an_error_naming_the_problem(media_root):
    ref = connector.save_aggregate_result(claim_of(make_model()), parse_weights([1.0]))
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


def test_a_result_is_stored_as_safetensors_with_its_names_and_dtypes(media_root):
    weights = Weights(layers=(np.ones((2, 2), np.float32), np.zeros(3, np.float16)), layered=True, names=("w", "b"))

    ref = connector.save_aggregate_result(claim_of(make_model()), weights)

    assert ref.endswith(".safetensors")
    stored = safetensors.numpy.load((media_root / ref).read_bytes())
    assert {name: array.dtype for name, array in stored.items()} == {"w": np.float32, "b": np.float16}
    assert connector.open_weights(ref).structure == weights.structure


@pytest.mark.parametrize(
    ("arrays", "document"),
    [
        ({"array": np.array([1.0, 2.0])}, [1.0, 2.0]),
        ({"layer_0": np.array([1]), "layer_1": np.array([2.5])}, [[1], [2.5]]),
    ],
)
def test_files_stored_as_npz_before_safetensors_still_load(media_root, arrays, document):
    (media_root / "updates").mkdir()
    np.savez(media_root / "updates" / "old.npz", allow_pickle=False, **arrays)

    assert weights_to_jsonable_list(connector.open_weights("updates/old.npz")) == document
    assert weights_to_jsonable_list(connector.load_weights("updates/old.npz")) == document


def weights_to_jsonable_list(weights):
    return json.loads(weights_to_json(weights))


class TestOnS3:
    """With django-storages' S3 backend (moto), tensors are read by ranged GETs through fma_core.aws."""

    @pytest.fixture
    def bucket(self, monkeypatch, settings):
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        aws_client.cache_clear()
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "fma-weights"}},
        }
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="fma-weights")
            yield client
        aws_client.cache_clear()

    def test_a_stored_result_reads_back_tensor_by_tensor(self, bucket):
        weights = Weights(layers=(np.arange(4, dtype=np.float32), np.ones(2)), layered=True, names=("a", "b"))
        ref = DjangoModelDataConnector().save_aggregate_result(claim_of(make_model()), weights)

        source = DjangoModelDataConnector().open_weights(ref)

        assert isinstance(source, SafetensorsTensors)
        assert type(source._reader).__name__ == "S3RangeReader"
        assert source.structure == weights.structure
        np.testing.assert_array_equal(source.tensor(0), np.arange(4, dtype=np.float32))
        assert bucket.get_object(Bucket="fma-weights", Key=ref)["ContentLength"] > 0
