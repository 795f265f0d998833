"""What ``DeveloperClient`` answers: the service's rows as typed, immutable records with named statuses.

Each record has the fields the service answers today; a field the service adds later stays readable in
``extra`` (the wire contract lets the service add fields), and ``raw`` keeps the whole answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, ClassVar, Self, TypeVar


class UpdateStatus(IntEnum):
    """Where an update is: waiting, claimed by an aggregation, aggregated, or not (failed, refused)."""

    PENDING = 0
    RUNNING = 1
    COMPLETE = 2
    FAILED = 3
    INVALID = 4


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Record:
    """A row of the service; ``from_json`` picks its fields, converts those named in ``_converters``."""

    _converters: ClassVar[dict[str, Any]] = {"created_on": _when, "last_modified": _when, "expires_at": _when}

    raw: dict[str, Any] = field(repr=False, compare=False)
    extra: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        names = {item.name for item in dataclasses.fields(cls)} - {"raw", "extra"}
        values = {name: cls._converters.get(name, _same)(body.get(name)) for name in names}
        extra = {name: value for name, value in body.items() if name not in names}
        return cls(raw=dict(body), extra=extra, **values)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, kw_only=True)
class Model(Record):
    """A federated model (``current_artifact``: the id of the artifact clients get, or None)."""

    id: int
    name: str
    developer: int
    clients: list[str]
    current_artifact: int | None
    aggregator: str
    aggregator_args: dict[str, Any] | None
    requirement: str
    requirement_args: Any
    update_schema: dict[str, Any] | None
    client_agg_results_schema: dict[str, Any] | None
    furthest_base_agg: int | None
    allow_aggregation: bool
    registration: str
    client_auth: str
    update_max_norm: float | None
    created_on: datetime | None
    last_modified: datetime | None


@dataclass(frozen=True, kw_only=True)
class Aggregate(Record):
    """An aggregate of a model's updates (``result``: the URL of its weights, or the weights as JSON)."""

    id: int
    federated_model: int
    parent: int | None
    result: Any
    validation_score: float | None
    created_on: datetime | None


@dataclass(frozen=True, kw_only=True)
class Update(Record):
    """A client's update; ``status`` named (``UpdateStatus``), ``status_reason`` says why it failed."""

    _converters: ClassVar[dict[str, Any]] = {**Record._converters, "status": UpdateStatus}

    id: int
    client: str
    federated_model: int
    data: Any
    status: UpdateStatus
    base_aggregate: int | None
    applied_aggregate: int | None
    num_examples: int | None
    status_reason: str | None
    created_on: datetime | None


@dataclass(frozen=True, kw_only=True)
class Score(Record):
    """A client's validation results of an aggregate."""

    id: int
    aggregate: int
    client: str
    validation_results: Any
    created_on: datetime | None


@dataclass(frozen=True, kw_only=True)
class Artifact(Record):
    """A published version of a model (``values``: the URL of its weights, or the weights as JSON)."""

    id: int
    version: str
    federated_model: int
    values: Any
    created_on: datetime | None


@dataclass(frozen=True, kw_only=True)
class EnrollmentToken(Record):
    """An enrollment token of an ``invite`` model; ``token`` is shown only in the answer that made it."""

    id: int
    federated_model: int
    token: str | None
    uses: int
    used: int
    expires_at: datetime | None
    created_on: datetime | None


RecordT = TypeVar("RecordT", bound=Record)
