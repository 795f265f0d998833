"""An aggregation killed (SIGKILL) after writing its result file and before recording the aggregate.

Two real processes are stopped at that exact step with no fault injected: a ``manage.py run_aggregator --once``
over the model data folder, and the aggregator Lambda (``aggregator_initialization`` in a warm container,
``tests/integration/lambda_support.py``) over moto's S3, both on the test's PostgreSQL database. The test holds
the model's row lock, which recording the aggregate takes first (``DjangoMetadataConnector.record_aggregate``),
so the run writes its result and then waits; the test kills it there. The run that comes once the lease is over
takes the claim back, deletes the result the claim names and aggregates the updates: nothing lost, nothing
counted twice, no file left behind. A run within the lease leaves the killed run's claim and file alone.

On SQLite one lock guards every write (the claim too), so this step cannot be isolated there;
``tests/fma_django_connectors/test_numeric_safety.py::TestKilledBeforeRecording`` and
``tests/api_service/test_aggregator_killed_before_recording.py`` build the state such a kill leaves and check
the same recovery on both databases.
"""

import signal
import subprocess
import sys
import time

import numpy as np
import psycopg2
import pytest
from django.db import connection

from fma_core.aws import aws_client
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_model, make_update, result_of, statuses
from tests.integration.lambda_support import LambdaContainer, moto_server
from tests.s3_storage import moto_environment, store_model_data_in_s3
from tests.servers import REPOSITORY_DIR, server_environment
from tests.storage_faults import stored_files

pytestmark = [pytest.mark.integration, pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]

Status = ModelUpdate.Status
LEASE_SECONDS = 2
# Bounds of the waits, not timings under test: a worker starts Django and aggregates three tiny updates.
WORKER_WAIT_SECONDS = 120


def _database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _hold_model_row(model):
    """A connection holding the model's row lock (recording an aggregate waits for it); roll it back to release."""
    locker = psycopg2.connect(**connection.get_connection_params())
    with locker.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM fma_django_connectors_federatedmodel WHERE id = %s FOR NO KEY UPDATE", [model.pk]
        )
    return locker


def _worker(data_dir, model_id):
    """``run_aggregator --once`` for one model, on the test's database and ``data_dir/media``."""
    env = server_environment(
        data_dir,
        DJANGO_SETTINGS_MODULE="federated_learning_project.settings_local",
        FMA_LOCAL_DATABASE_URL=_database_url(),
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
    locker = _hold_model_row(model)

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


class TestAggregatorLambdaOverS3:
    LEASE_SECONDS = 6
    BUCKET = "fma-killed-aggregator"

    @pytest.fixture
    def aws(self, monkeypatch, settings):
        """moto's S3 as a server, holding the model data of this process and of the Lambda's; its environment."""
        with moto_server() as url:
            store_model_data_in_s3(monkeypatch, settings, bucket=self.BUCKET, endpoint_url=url, file_overwrite=False)
            yield moto_environment(url)
        aws_client.cache_clear()

    def _function(self, aws, tmp_path, name):
        """A warm container of the aggregator Lambda, on the test's database and the bucket."""
        environment = server_environment(
            tmp_path / name,
            DJANGO_SETTINGS_MODULE="tests.integration.settings_s3",
            FMA_LOCAL_DATABASE_URL=_database_url(),
            FMA_AGGREGATION_TRIGGER="none",
            FMA_CLAIM_LEASE_SECONDS=str(self.LEASE_SECONDS),
            FMA_MODEL_DATA_BUCKET=self.BUCKET,
            **aws,
        )
        return LambdaContainer("aggregator_initialization", environment, tmp_path / f"{name}.log")

    def _keys(self):
        s3 = aws_client("s3")
        return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=self.BUCKET).get("Contents", []))

    def test_a_lambda_killed_between_writing_and_recording_its_result_leaves_nothing_after_the_lease(
        self, aws, tmp_path
    ):
        # Prepare: three updates in the bucket, the model's row locked, and two warm containers of the function.
        model = make_model()
        updates = [make_update(model, [float(value), 3.0], client=c) for value, c in enumerate(model.clients.all())]
        event = {
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {"model_id": model.pk},
        }
        killed, next_one = self._function(aws, tmp_path, "killed"), self._function(aws, tmp_path, "next")
        locker = _hold_model_row(model)

        # Execute: kill the first container once its result is in the bucket and it waits to record it; the
        # schedule fires at once (within the lease), then once the lease is over.
        killed.send(event)
        try:
            stopped_at_recording = _wait_for(
                lambda: (
                    any(key.startswith("aggregates/") for key in self._keys())
                    and _waiting_for_a_lock(connection.settings_dict["NAME"])
                ),
                WORKER_WAIT_SECONDS,
            )
        finally:
            killed.process.send_signal(signal.SIGKILL)
            killed.process.wait(timeout=30)
            locker.rollback()
            locker.close()
        assert stopped_at_recording, f"the function never reached the recording step:\n{killed.log_path.read_text()}"
        left_by_the_kill = statuses(*updates), ModelAggregate.objects.count(), self._keys()
        within_the_lease = next_one.invoke(event)
        kept_within_the_lease = statuses(*updates), self._keys()
        time.sleep(self.LEASE_SECONDS + 1)
        after_the_lease = next_one.invoke(event)
        next_one.close()

        # Assert: the kill left the updates claimed and an unrecorded result, which a run within the lease kept;
        # the run after it deleted that result and put every update in one aggregate, whose result is the only
        # one in the bucket.
        update_keys = sorted(u.data.name for u in updates)
        (orphan,) = sorted(set(left_by_the_kill[2]) - set(update_keys))
        assert left_by_the_kill[:2] == ([Status.RUNNING] * len(updates), 0)
        assert within_the_lease is None
        assert kept_within_the_lease == ([Status.RUNNING] * len(updates), left_by_the_kill[2])
        aggregate = ModelAggregate.objects.get()
        assert after_the_lease == aggregate.pk
        assert statuses(*updates) == [Status.COMPLETE] * len(updates)
        assert {ModelUpdate.objects.get(pk=u.pk).applied_aggregate_id for u in updates} == {aggregate.pk}
        np.testing.assert_array_equal(result_of(aggregate), [1.0, 3.0])
        assert self._keys() == sorted([*update_keys, aggregate.result.name])
        assert orphan != aggregate.result.name
