"""An aggregation worker killed (SIGKILL) after writing its result file and before recording the aggregate.

A real ``manage.py run_aggregator --once`` runs in its own process on the test's PostgreSQL database and
model data folder. It is stopped at the exact step with no fault injected: the test holds the model's row
lock, which recording the aggregate takes first (``DjangoMetadataConnector.record_aggregate``), so the
worker writes its result and then waits; the test kills it there. A new worker, started once the lease is
over, deletes the result nobody recorded and aggregates the updates: nothing lost, nothing counted twice,
no file left behind.

On SQLite one lock guards every write (the claim too), so this step cannot be isolated there;
``tests/fma_django_connectors/test_numeric_safety.py::TestKilledBeforeRecording`` builds the state such a
kill leaves and checks the same recovery on both databases.
"""

import signal
import subprocess
import sys
import time

import numpy as np
import psycopg2
import pytest
from django.db import connection

from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses
from tests.servers import REPOSITORY_DIR, server_environment
from tests.storage_faults import stored_files

pytestmark = [pytest.mark.integration, pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]

Status = ModelUpdate.Status
LEASE_SECONDS = 2
# Bounds of the waits, not timings under test: a worker starts Django and aggregates three tiny updates.
WORKER_WAIT_SECONDS = 120


def _worker(data_dir, model_id):
    """``run_aggregator --once`` for one model, on the test's database and ``data_dir/media``."""
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = server_environment(
        data_dir,
        DJANGO_SETTINGS_MODULE="federated_learning_project.settings_local",
        FMA_LOCAL_DATABASE_URL=database_url,
        FMA_AGGREGATION_TRIGGER="none",
        FMA_CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    command = [sys.executable, str(REPOSITORY_DIR / "api_service" / "manage.py"), "run_aggregator", "--once"]
    return subprocess.Popen(
        [*command, "--model", str(model_id)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _waiting_for_a_lock(database):
    with psycopg2.connect(**connection.get_connection_params()) as watcher, watcher.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [database]
        )
        waiting = cursor.fetchone()[0]
    watcher.close()
    return waiting > 0


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_between_writing_and_recording_its_result_loses_nothing_and_leaves_no_file(settings, tmp_path):
    # Prepare: three updates on the model data folder the workers use, and the model's row locked.
    data_dir = tmp_path / "data"
    media_root = data_dir / "media"
    settings.MEDIA_ROOT = media_root
    model = make_model()
    updates = [make_update(model, [float(value), 3.0], client=c) for value, c in enumerate(model.clients.all())]
    locker = psycopg2.connect(**connection.get_connection_params())
    with locker.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM fma_django_connectors_federatedmodel WHERE id = %s FOR NO KEY UPDATE", [model.pk]
        )

    # Execute: kill the worker once its result is written and it waits to record it.
    first = _worker(data_dir, model.pk)
    try:
        stopped_at_recording = _wait_for(
            lambda: (
                (media_root / "aggregates").is_dir()
                and any((media_root / "aggregates").iterdir())
                and _waiting_for_a_lock(connection.settings_dict["NAME"])
            ),
            WORKER_WAIT_SECONDS,
        )
    finally:
        first.send_signal(signal.SIGKILL)
        _, first_stderr = first.communicate(timeout=30)
        locker.rollback()
        locker.close()
    assert stopped_at_recording, f"the worker never reached the recording step:\n{first_stderr}"
    killed = statuses(*updates), ModelAggregate.objects.count(), stored_files(media_root / "aggregates")
    # The new worker comes after the lease: until then the claim may belong to a live run.
    time.sleep(LEASE_SECONDS + 1)
    second = _worker(data_dir, model.pk)
    out, err = second.communicate(timeout=WORKER_WAIT_SECONDS)

    # Assert: the kill left the updates claimed and an unrecorded result; the new worker deleted that file and
    # put every update in one aggregate, whose file is the only result left.
    assert killed[:2] == ([Status.RUNNING] * len(updates), 0)
    assert len(killed[2]) == 1
    assert second.returncode == 0, err
    aggregate = ModelAggregate.objects.get()
    assert out.strip() == f"model {model.pk}: new aggregate {aggregate.pk}"
    assert statuses(*updates) == [Status.COMPLETE] * len(updates)
    assert {ModelUpdate.objects.get(pk=u.pk).applied_aggregate_id for u in updates} == {aggregate.pk}
    np.testing.assert_array_equal(result_of(aggregate), [1.0, 3.0])
    assert stored_files(media_root / "aggregates") == [aggregate.result.name.removeprefix("aggregates/")]
