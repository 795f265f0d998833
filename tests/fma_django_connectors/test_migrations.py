"""Migrations that change existing rows: 0002 fills the structure columns of rows stored before it, from their
files (legacy .npz too); 0008 makes public keys unique."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from fma_core.serialization import parse_weights
from fma_core.tensors import encode_safetensors

APP = "fma_django_connectors"
BEFORE, AFTER = [(APP, "0001_initial")], [(APP, "0002_weights_structure")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_after():
    """Every later test expects the latest schema: migrate forward again, whatever the test left."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_after")
def test_existing_rows_get_their_files_structure_and_models_their_first_weights(media_root):
    old = migrate(BEFORE)
    (media_root / "artifacts").mkdir()
    (media_root / "updates").mkdir()
    np.savez(media_root / "artifacts" / "initial.npz", allow_pickle=False, layer_0=np.zeros(3), layer_1=np.ones(2))
    (media_root / "updates" / "new.safetensors").write_bytes(encode_safetensors(parse_weights([[1, 2, 3], [4, 5]])))
    User = old.get_model("auth", "User")
    developer = User.objects.create(username="ada")
    Model = old.get_model(APP, "FederatedModel")
    model = Model.objects.create(name="m", developer=developer, aggregator="fed_avg")
    empty = Model.objects.create(name="empty", developer=developer, aggregator="fed_avg")
    artifact = old.get_model(APP, "ModelArtifact").objects.create(
        federated_model=model, values="artifacts/initial.npz", version="1.0.0"
    )
    client = old.get_model(APP, "Client").objects.create()
    update = old.get_model(APP, "ModelUpdate").objects.create(
        federated_model=model, client=client, data="updates/new.safetensors"
    )
    missing = old.get_model(APP, "ModelUpdate").objects.create(
        federated_model=model, client=client, data="updates/gone.npz"
    )

    new = migrate(AFTER)

    layers = {"layered": True, "tensors": [{"name": "0", "shape": [3], "dtype": "float64"}]}
    layers["tensors"].append({"name": "1", "shape": [2], "dtype": "float64"})
    artifact = new.get_model(APP, "ModelArtifact").objects.get(pk=artifact.pk)
    assert (artifact.structure, artifact.parameter_count, artifact.byte_size) == (layers, 5, 40)
    update = new.get_model(APP, "ModelUpdate").objects.get(pk=update.pk)
    assert update.structure["tensors"][0]["dtype"] == "int64"
    assert new.get_model(APP, "ModelUpdate").objects.get(pk=missing.pk).structure is None
    models = new.get_model(APP, "FederatedModel").objects
    assert models.get(pk=model.pk).structure == layers
    assert models.get(pk=empty.pk).structure is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_after")
def test_a_key_shared_by_several_clients_stays_with_the_first_and_keys_become_unique():
    """Migration 0008: before keys were proven, anyone could register another client's key."""
    old = migrate([(APP, "0007_throttle_counts")])
    Client = old.get_model(APP, "Client")
    shared, own = b"s" * 32, b"o" * 32
    first = Client.objects.create(public_key=shared)
    later = Client.objects.create(public_key=shared)
    Client.objects.filter(pk=later.pk).update(created_on=first.created_on + timedelta(seconds=1))
    alone = Client.objects.create(public_key=own)
    keyless = Client.objects.create()

    new = migrate([(APP, "0008_signed_request_keys_and_nonces")])

    Client = new.get_model(APP, "Client")
    keys = {client.pk: client.public_key and bytes(client.public_key) for client in Client.objects.all()}
    assert keys == {first.pk: shared, later.pk: None, alone.pk: own, keyless.pk: None}
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(public_key=own)
