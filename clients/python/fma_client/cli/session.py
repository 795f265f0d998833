"""The one place ``fma`` calls ``fma_client``: a thin adapter over ``DeveloperClient``.

The commands see plain JSON-shaped rows (what the service answers), so richer SDK results (typed statuses,
waits, streamed downloads) replace a method here without touching the commands or their output.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fma_client import DeveloperClient
from fma_client.cli.credentials import Credentials
from fma_client.results import Record

Row = dict[str, Any]


def as_row(result: Any) -> Row:
    """A result of ``DeveloperClient`` as the service's JSON fields: its records' answers as the service sent them."""
    if isinstance(result, Record):
        return dict(result.raw)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, Mapping):
        return dict(result)
    raise TypeError(f"not a row: {result!r}")


def as_rows(results: Iterable[Any]) -> list[Row]:
    return [as_row(result) for result in results]


def log_in(url: str, username: str, password: str) -> Credentials:
    """Exchange a username and password for the developer's token at ``/api-token-auth/``."""
    client = DeveloperClient(url, progress=False)
    return Credentials(url=client.url, username=username, token=client.login(username, password))


class Session:
    """A logged-in developer's calls, as ``fma`` uses them."""

    def __init__(self, credentials: Credentials, *, progress: bool = True) -> None:
        self.credentials = credentials
        self._client = DeveloperClient(credentials.url, token=credentials.token, progress=progress)

    @property
    def url(self) -> str:
        return self._client.url

    def list_models(self) -> list[Row]:
        return as_rows(self._client.list_models())

    def get_model(self, model_id: int) -> Row:
        return as_row(self._client.get_model(model_id))

    def create_model(self, body: Row) -> Row:
        fields = dict(body)
        return as_row(self._client.create_model(fields.pop("name"), fields.pop("aggregator", "fed_avg"), **fields))

    def newest_aggregates(self, model_id: int, count: int) -> list[Row]:
        """The model's ``count`` newest aggregates, newest first: one request however many the model has."""
        # DeveloperClient.list_aggregates pages through all of them, too much for a poll every few seconds.
        return as_rows(
            self._client._transport.json(
                "GET",
                "api/v1/model_aggregates/",
                idempotent=True,
                params={"federated_model": model_id, "page_size": count},
            )
        )

    def list_scores(self, aggregate_id: int) -> list[Row]:
        return as_rows(self._client.list_scores(aggregate_id))

    def publish(self, aggregate_id: int, version: str | None) -> Row:
        """Publish the aggregate as artifact ``version``; without one, the next free minor version."""
        return as_row(self._client.publish(aggregate_id, version))

    def download(self, aggregate_id: int, weight_format: str, target: Path) -> int:
        """Write the aggregate's weights in ``weight_format`` to ``target``; the number of bytes.

        The bytes go to a temporary file next to ``target``, renamed over it once complete: an interrupted or
        refused download never leaves a partial file under the name asked for.
        """
        target = target.resolve()
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                # Streamed block by block: the model is never held in memory.
                self._client._transport.download(
                    f"api/v1/model_aggregates/{aggregate_id}/result/", file, params={"format": weight_format}
                )
            # mkstemp made the file 0600; weights get the usual mode of a new file.
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target.stat().st_size

    def list_tokens(self, model_id: int | None) -> list[Row]:
        return as_rows(self._client.list_enrollment_tokens(model_id))

    def create_token(self, model_id: int, uses: int, expires_at: Any) -> Row:
        return as_row(self._client.create_enrollment_token(model_id, uses=uses, expires_at=expires_at))

    def revoke_token(self, token_id: int) -> None:
        self._client.revoke_enrollment_token(token_id)


def _umask() -> int:
    # The only way to read the umask is to set it; set it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask
