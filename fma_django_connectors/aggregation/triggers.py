"""What happens when a model update is stored: ask for an aggregation of its model.

``FMA_AGGREGATION_TRIGGER`` picks how:

- ``"local"`` (the embedded default): run ``agg_service`` in this process, in a background thread,
  so the client that sent the update does not wait for it. Requests for a model whose aggregation is
  already running are coalesced into one more run after it, never a thread each.
- ``"lambda"``: invoke the aggregator Lambda ``AGGREGATOR_LAMBDA_ARN`` asynchronously
  (``InvocationType="Event"``, payload ``{"model_id": N}``).
- ``"none"``: do nothing here; aggregation runs elsewhere (a schedule, ``manage.py run_aggregator``).

A trigger never fails the request that stored the update: its errors are logged. The update is
safe either way: it stays PENDING until some aggregation takes it.

``start_local_sweeper`` (the local server starts it) asks the local runner for an aggregation of every
model with work left at start-up and every ``FMA_LOCAL_SWEEP_SECONDS``: updates that arrived while no
run was due, and claims of a run that died with the process, are taken up with no new update needed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connections

from fma_core.aws import aws_client, aws_errors
from fma_core.registry import Registry
from fma_core.workflows.aggregation import agg_service
from fma_django_connectors import selectors
from fma_django_connectors.conf import fma_settings

__all__ = [
    "request_aggregation",
    "start_local_sweeper",
    "sweep_local",
    "trigger_for",
    "wait_for_local_aggregations",
]

logger = logging.getLogger(__name__)

Trigger = Callable[[int], None]
_triggers: Registry[Trigger] = Registry("aggregation trigger")


def request_aggregation(*, model_id: int) -> None:
    """Ask for an aggregation of ``model_id`` the way ``FMA_AGGREGATION_TRIGGER`` says.

    Raises
    ------
    ConfigurationError
        ``FMA_AGGREGATION_TRIGGER`` names no trigger; the message lists the choices.
    """
    trigger_for(fma_settings.FMA_AGGREGATION_TRIGGER)(model_id)


def trigger_for(name: str) -> Trigger:
    """The trigger ``name`` (a value of ``FMA_AGGREGATION_TRIGGER``); an unknown one raises listing the choices."""
    return _triggers.get(name, setting="FMA_AGGREGATION_TRIGGER")


@_triggers.register("none")
def _no_trigger(model_id: int) -> None:
    """Aggregation is left to a schedule or a separate worker."""


class _LocalRunner:
    """One background thread per model at most, plus a flag asking it for one more run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # model id → whether another run was asked for while one was under way
        self._running: dict[int, bool] = {}

    def request(self, model_id: int) -> None:
        with self._lock:
            if model_id in self._running:
                self._running[model_id] = True
                return
            self._running[model_id] = False
        threading.Thread(target=self._work, args=(model_id,), name=f"fma-aggregation-{model_id}", daemon=True).start()

    def wait_idle(self, timeout: float) -> bool:
        """Whether every run finished within ``timeout`` seconds (for shutdown and tests)."""
        for thread in [t for t in threading.enumerate() if t.name.startswith("fma-aggregation-")]:
            thread.join(timeout)
        with self._lock:
            return not self._running

    def _work(self, model_id: int) -> None:
        try:
            again = True
            while again:
                try:
                    agg_service(model_id)
                except Exception:
                    logger.exception("model %s: in-process aggregation failed", model_id)
                with self._lock:
                    again = self._running[model_id]
                    if again:
                        self._running[model_id] = False
                    else:
                        del self._running[model_id]
        finally:
            # This thread's own database connections; left open they would outlive it.
            connections.close_all()


_local_runner = _LocalRunner()
_triggers.register("local")(_local_runner.request)


def wait_for_local_aggregations(timeout: float = 30.0) -> bool:
    """Wait until no in-process aggregation is running; whether that happened within ``timeout`` seconds."""
    return _local_runner.wait_idle(timeout)


def sweep_local() -> list[int]:
    """Ask the local runner for an aggregation of every model with work left; the ids of those models."""
    model_ids = selectors.models_with_pending_work()
    for model_id in model_ids:
        _local_runner.request(model_id)
    return model_ids


def start_local_sweeper(interval: float) -> threading.Thread:
    """A daemon thread that runs ``sweep_local`` now and then every ``interval`` seconds, for the process's life."""

    def sweep_forever() -> None:
        while True:
            # A connection the database dropped since the last pass is replaced, not reused.
            close_old_connections()
            try:
                sweep_local()
            except Exception:
                logger.exception("the local sweep for models with pending work failed; trying again")
            time.sleep(interval)

    thread = threading.Thread(target=sweep_forever, name="fma-local-sweeper", daemon=True)
    thread.start()
    return thread


@_triggers.register("lambda")
def _invoke_aggregator_lambda(model_id: int) -> None:
    """Start the aggregator Lambda for the model without waiting for it.

    A best-effort call (one attempt, short timeouts): the client is waiting for its 201, and an update
    this invoke misses is swept up by the model's schedule, which ``schedule_wake`` armed just before.
    """
    action = "could not invoke the aggregator Lambda"
    arn = fma_settings.AGGREGATOR_LAMBDA_ARN
    if not arn:
        logger.error("model %s: %s: AGGREGATOR_LAMBDA_ARN is not set", model_id, action)
        return
    # arn:aws:lambda:<region>:<account>:function:<name> — the function's own region, whatever the caller's;
    # a bare function name uses the caller's region.
    parts = arn.split(":")
    try:
        with aws_errors(action, service="AWS Lambda", setting="AGGREGATOR_LAMBDA_ARN"):
            aws_client("lambda", region_name=parts[3] if len(parts) > 3 else None, best_effort=True).invoke(
                FunctionName=arn, InvocationType="Event", Payload=json.dumps({"model_id": model_id}).encode()
            )
    except Exception as exc:
        # The message only: it names the service and the setting; a timeout's traceback would add nothing.
        logger.error("model %s: %s; the model's schedule will aggregate the update", model_id, exc)
