"""Many simulated clients of one model on one machine, registered concurrently.

Every client of such a simulation calls from the same address, and the service brakes anonymous registrations
per address (30 a minute by default, docs/security.md): 100 clients registering themselves would wait minutes.
Two ways past it:

- the clients register themselves, as real ones do, on a local server started with
  ``FMA_LOCAL_REGISTRATION_RATE=none make run`` (the embedded default alone honours it);
- a developer adds them (``developer=``: ``DeveloperClient.add_client``, counted against the developer's own
  rate, 1200 a minute), which works on any deployment and is the only way into a ``closed`` model.

Registering here does not wait out the brake: a throttled registration raises ``TooManyRequests`` at once, with a
note naming both ways.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fma_client.clients import DeveloperClient, WebClient
from fma_client.errors import TooManyRequests
from fma_client.transport import RetryPolicy

__all__ = ["register_clients"]

logger = logging.getLogger(__name__)

# Registrations in flight at once: enough to keep the local server's handler workers busy.
DEFAULT_WORKERS = 8

BRAKE_NOTE = (
    "The service brakes anonymous registrations per address. To simulate many clients on one machine, start the "
    "local server with FMA_LOCAL_REGISTRATION_RATE=none (make run), or let a developer add the clients: "
    "register_clients(..., developer=DeveloperClient(...))."
)


def register_clients(
    federated_model_id: int,
    count: int,
    url: str | None = None,
    *,
    developer: DeveloperClient | None = None,
    enrollment_token: str | None = None,
    workers: int = DEFAULT_WORKERS,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    progress: bool = False,
) -> list[WebClient]:
    """``count`` new clients of the model, each registered, in the order they were made.

    Parameters
    ----------
    federated_model_id
        The model the clients train.
    count
        How many clients.
    url
        The service's root URL (default ``http://127.0.0.1:8000/``).
    developer
        When given, the developer adds each client (``add_client``) instead of the client registering itself.
    enrollment_token
        For an ``invite`` model whose clients register themselves: a token with at least ``count`` uses.
    workers
        Registrations in flight at once (clients registering themselves; a developer adds them one by one).
    timeout, retry, progress
        Of each returned ``WebClient`` (``WebClient`` has their meaning); registering itself is tried once.

    Raises
    ------
    TooManyRequests
        The service braked the registrations (its note says how to lift the brake).
    ValueError
        ``count`` or ``workers`` below 1; ``developer`` and ``enrollment_token`` both given.
    """
    if count < 1 or workers < 1:
        raise ValueError(f"count and workers must be at least 1, not {count} and {workers}")
    if developer is not None and enrollment_token is not None:
        raise ValueError("a developer adds clients without an enrollment token: give developer or enrollment_token")

    def new_uuid() -> str:
        registering = WebClient(
            federated_model_id,
            url=url,
            timeout=timeout,
            # Once: a 429 here is the brake, whose wait (a minute per few dozen clients) would stall the simulation.
            retry=RetryPolicy(attempts=1),
            progress=False,
            enrollment_token=enrollment_token,
        )
        return registering.register()

    if developer is not None:
        # One after the other: the developer's client is one session (requests' sessions are not thread-safe).
        uuids = [developer.add_client(federated_model_id) for _ in range(count)]
    else:
        uuids = _map_concurrently(new_uuid, count, workers)
    logger.info("Registered %d clients of model %d", count, federated_model_id)
    return [
        WebClient(federated_model_id, uuid=uuid, url=url, timeout=timeout, retry=retry, progress=progress)
        for uuid in uuids
    ]


def _map_concurrently(make: Callable[[], str], count: int, workers: int) -> list[str]:
    """``count`` results of ``make``, called on ``workers`` threads; the first error raised, the others' calls
    abandoned (those already sent complete on the service)."""
    with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
        futures = [pool.submit(make) for _ in range(count)]
        try:
            return [future.result() for future in futures]
        except TooManyRequests as braked:
            for future in futures:
                future.cancel()
            braked.add_note(BRAKE_NOTE)
            logger.warning("Registration braked by the service: %s", BRAKE_NOTE)
            raise
