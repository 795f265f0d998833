"""Storage failing while an aggregation writes its result: nothing recorded, nothing left, nothing lost.

The updates are read from a working storage; only the result's folder is broken (a plain file in its
place), or the disk fills up while the result is written. The run fails (the storage's error is raised: a
failure of the deployment, not of the updates), records no aggregate, leaves no result file (not even part of
one), and leaves its updates PENDING; the next run once the storage is back aggregates every one of them
exactly once.
"""

from __future__ import annotations

import numpy as np
import pytest

from fma_core.workflows.aggregation import agg_service
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses
from tests.storage_faults import block_folder, full_disk_storages, stored_files

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

Status = ModelUpdate.Status


def _break_results(kind, settings, media_root):
    """Break where results are written; the function that mends it."""
    if kind == "blocked folder":
        return block_folder(media_root, "aggregates").unlink
    working = settings.STORAGES
    settings.STORAGES = full_disk_storages(working)

    def mend():
        settings.STORAGES = working

    return mend


@pytest.mark.parametrize("fault", ["blocked folder", "full disk"])
def test_a_result_the_storage_cannot_keep_records_nothing_and_the_next_run_aggregates_every_update_once(
    fault, settings, media_root
):
    # Prepare: the updates are stored before the storage breaks.
    model = make_model()
    updates = [make_update(model, [float(value), 1.0], client=c) for value, c in enumerate(model.clients.all())]
    mend = _break_results(fault, settings, media_root)

    # Execute
    with pytest.raises(OSError, match=r"is not a directory|No space left"):
        agg_service(model.pk)
    after_failure = statuses(*updates), ModelAggregate.objects.count(), stored_files(media_root)
    mend()
    aggregate_id = agg_service(model.pk)

    # Assert: the failed run left no aggregate and no result file; the next one took all the updates, once.
    assert after_failure[:2] == ([Status.PENDING] * len(updates), 0)
    assert [name for name in after_failure[2] if name.startswith("aggregates/")] == []
    aggregate = ModelAggregate.objects.get()
    assert aggregate.pk == aggregate_id
    assert {ModelUpdate.objects.get(pk=u.pk).applied_aggregate_id for u in updates} == {aggregate_id}
    assert statuses(*updates) == [Status.COMPLETE] * len(updates)
    np.testing.assert_array_equal(result_of(aggregate), [1.0, 1.0])
    assert [name for name in stored_files(media_root) if name.startswith("aggregates/")] == [aggregate.result.name]
