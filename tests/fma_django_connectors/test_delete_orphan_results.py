"""manage.py delete_orphan_results: the one-off sweep for results no aggregate records (older names included)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from fma_django_connectors.models import ModelAggregate
from tests.fma_django_connectors.workflow_support import make_aggregate, make_model
from tests.storage_faults import stored_files

pytestmark = pytest.mark.django_db


def test_deletes_the_unrecorded_results_older_than_the_lease_and_names_them(media_root):
    # Prepare: a recorded result, and an unrecorded one (named by a uuid, as before) older than the lease.
    model = make_model()
    recorded = make_aggregate(model, [1.0])
    unrecorded = make_aggregate(model, [2.0])
    orphan = unrecorded.result.name
    unrecorded.delete()
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(media_root / orphan, (an_hour_ago, an_hour_ago))
    out = StringIO()

    # Execute
    call_command("delete_orphan_results", stdout=out)

    # Assert
    assert out.getvalue() == f"deleted {orphan}\ndeleted 1 result file(s) no aggregate records\n"
    assert stored_files(media_root / "aggregates") == [recorded.result.name.removeprefix("aggregates/")]
    assert ModelAggregate.objects.get() == recorded
