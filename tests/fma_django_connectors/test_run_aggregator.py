"""manage.py run_aggregator: a worker that aggregates the models that allow it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from fma_core.exceptions import ConfigurationError
from fma_django_connectors.models import ModelAggregate, ModelUpdate
from tests.fma_django_connectors.workflow_support import make_model, make_update, statuses

Status = ModelUpdate.Status
pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("run_aggregator", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_once_aggregates_every_model_that_allows_it_and_no_other():
    first, second = make_model(), make_model()
    paused = make_model(allow_aggregation=False)
    make_update(first, [1.0])
    make_update(second, [2.0])
    waiting = make_update(paused, [3.0])

    out, err = run("--once")

    made = {a.federated_model_id: a.pk for a in ModelAggregate.objects.all()}
    assert set(made) == {first.pk, second.pk}
    assert f"model {first.pk}: new aggregate {made[first.pk]}" in out
    assert f"model {second.pk}: new aggregate {made[second.pk]}" in out
    assert err == ""
    assert statuses(waiting) == [Status.PENDING]


def test_one_model_only():
    chosen, other = make_model(), make_model()
    make_update(chosen, [1.0])
    untouched = make_update(other, [2.0])

    run("--once", "--model", str(chosen.pk))

    assert list(ModelAggregate.objects.values_list("federated_model_id", flat=True)) == [chosen.pk]
    assert statuses(untouched) == [Status.PENDING]


def test_an_unknown_model_is_reported_and_the_worker_goes_on():
    out, err = run("--once", "--model", "424242")

    assert out == ""
    assert "model 424242: federated model 424242 does not exist" in err


@pytest.mark.django_db(transaction=True)
def test_the_loop_sleeps_the_interval_between_passes(monkeypatch):
    model = make_model()
    sleeps = []

    def sleep_then_add_an_update(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt
        make_update(model, [5.0])

    monkeypatch.setattr("fma_django_connectors.management.commands.run_aggregator.time.sleep", sleep_then_add_an_update)

    with pytest.raises(KeyboardInterrupt):
        run("--interval", "2.5")

    assert sleeps == [2.5, 2.5]
    assert ModelAggregate.objects.filter(federated_model=model).count() == 1


def test_wrong_connector_settings_stop_the_worker_before_the_first_pass(settings):
    settings.AGGREGATOR_SETTINGS = {**settings.AGGREGATOR_SETTINGS, "metadata_connector": {"type": "Nope"}}

    with pytest.raises(ConfigurationError, match=r"Unknown metadata connector 'Nope' .*DjangoMetadataConnector"):
        run("--once")
