"""manage.py delete_orphan_results: the sweep for stored files no row names: results no aggregate records (older
names included) and update files no update records (a request killed between writing the file and its commit)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from fma_core.serialization import parse_weights
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from fma_django_connectors.services import UPDATE_ORPHAN_MIN_AGE
from fma_django_connectors.storage.weights_storage import weights_save
from tests.fma_django_connectors.workflow_support import make_aggregate, make_model, make_update
from tests.storage_faults import stored_files

pytestmark = pytest.mark.django_db


def age(path, by):
    then = (datetime.now(UTC) - by).timestamp()
    os.utime(path, (then, then))


def written_unrecorded_update(model):
    """The file a request killed after writing it, before committing its update, leaves: its name."""
    update = ModelUpdate(federated_model=model, client=model.clients.first())
    weights_save(field=update.data, weights=parse_weights([9.0]))
    return update.data.name


def test_deletes_the_unrecorded_results_older_than_the_lease_and_names_them(media_root):
    # Prepare: a recorded result, and an unrecorded one (named by a uuid, as before) older than the lease.
    model = make_model()
    recorded = make_aggregate(model, [1.0])
    unrecorded = make_aggregate(model, [2.0])
    orphan = unrecorded.result.name
    unrecorded.delete()
    age(media_root / orphan, timedelta(hours=1))
    out = StringIO()

    # Execute
    call_command("delete_orphan_results", stdout=out)

    # Assert
    assert out.getvalue() == (
        f"deleted {orphan}\ndeleted 1 result file(s) no aggregate records and 0 update file(s) no update records\n"
    )
    assert stored_files(media_root / "aggregates") == [recorded.result.name.removeprefix("aggregates/")]
    assert ModelAggregate.objects.get() == recorded


def test_deletes_the_update_files_no_update_records_once_no_request_can_still_commit_them(media_root):
    # Prepare: a recorded update, a file a killed request left long ago, and one a request may still be committing.
    model = make_model()
    recorded = make_update(model, [1.0])
    age(media_root / recorded.data.name, UPDATE_ORPHAN_MIN_AGE * 2)  # age alone never deletes a recorded file
    orphan = written_unrecorded_update(model)
    age(media_root / orphan, UPDATE_ORPHAN_MIN_AGE + timedelta(minutes=1))
    in_flight = written_unrecorded_update(model)
    age(media_root / in_flight, UPDATE_ORPHAN_MIN_AGE - timedelta(minutes=5))
    out = StringIO()

    # Execute
    call_command("delete_orphan_results", stdout=out)

    # Assert
    assert out.getvalue() == (
        f"deleted {orphan}\ndeleted 0 result file(s) no aggregate records and 1 update file(s) no update records\n"
    )
    assert stored_files(media_root / "updates") == sorted(
        name.removeprefix("updates/") for name in (recorded.data.name, in_flight)
    )
    assert ModelUpdate.objects.get() == recorded
