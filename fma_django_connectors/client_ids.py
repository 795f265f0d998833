"""How developers see and name a model's clients: by uuid on ``uuid`` models, by public id on ``signed`` ones.

A client's uuid is its credential on ``uuid`` models, and one client may join several models, of several
developers. So wherever a developer reads a client of a ``signed`` model (its ``clients``, the ``client`` of
its updates and scores, the dashboard, messages), the client appears by its *public id*: ``client:`` and the
first 32 hex digits of the SHA-256 of ``fma-client:<uuid hex>``. It is derived (no column, no migration),
stable, unique per client (keys may repeat, uuids do not), exists for a client registered before its model
became signed (which has no key), and does not give the uuid back: it is not a credential anywhere.

A developer names a client of a ``signed`` model by either (its public id or, if it knows it, its uuid); on a
``uuid`` model by uuid only, exactly as before, so that naming a public id never answers with the uuid behind it.
The public id is computed in SQL as well (on SQLite and PostgreSQL alike), so that a filter or a lookup by
public id stays one query.
"""

from __future__ import annotations

import hashlib
import re
import uuid as uuid_module
from typing import Any

from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import SHA256, Cast, Concat, Replace, Substr
from django.db.models.sql.compiler import SQLCompiler

from fma_django_connectors.models import Client, FederatedModel

PREFIX = "client:"
# What is hashed: a fixed label and the uuid's 32 hex digits (the form SQLite stores; PostgreSQL's text
# form has dashes, removed in SQL).
_HASHED_LABEL = "fma-client:"
_DIGITS = 32
PUBLIC_ID_PATTERN = re.compile(rf"{re.escape(PREFIX)}[0-9a-f]{{{_DIGITS}}}")


def client_public_id(client_uuid: uuid_module.UUID | str) -> str:
    """The public id of the client with uuid ``client_uuid``."""
    hex_digits = uuid_module.UUID(str(client_uuid)).hex
    return PREFIX + hashlib.sha256((_HASHED_LABEL + hex_digits).encode()).hexdigest()[:_DIGITS]


def is_public_id(value: Any) -> bool:
    """Whether ``value`` has the form of a public id (it may name no client)."""
    return isinstance(value, str) and PUBLIC_ID_PATTERN.fullmatch(value) is not None


def model_is_signed(model: FederatedModel) -> bool:
    return model.client_auth == FederatedModel.ClientAuth.SIGNED


def client_label(client_uuid: uuid_module.UUID | str, *, model: FederatedModel) -> str:
    """How a developer sees the client with uuid ``client_uuid`` among those of ``model``."""
    return client_public_id(client_uuid) if model_is_signed(model) else str(client_uuid)


class _Sha256Hex(SHA256):
    """The hex SHA-256 of a text's UTF-8 bytes.

    Django's ``SHA256`` needs the pgcrypto extension on PostgreSQL; its own ``sha256(bytea)`` (11+) does not.
    """

    def as_postgresql(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> Any:
        template = "ENCODE(SHA256(CONVERT_TO(%(expressions)s, 'UTF8')), 'hex')"
        return self.as_sql(compiler, connection, template=template, **extra)


def _public_id_digits(uuid_field: str) -> Any:
    """SQL: the hex digits of the public id of the client whose uuid is in column ``uuid_field``."""
    hex_digits = Replace(Cast(F(uuid_field), output_field=CharField()), Value("-"), Value(""))
    return Substr(_Sha256Hex(Concat(Value(_HASHED_LABEL), hex_digits, output_field=CharField())), 1, _DIGITS)


def filter_by_public_id(rows: QuerySet[Any], public_id: str, *, uuid_field: str = "pk") -> QuerySet[Any]:
    """``rows`` whose client (uuid in ``uuid_field``) has the public id ``public_id``: one query, no column."""
    if not is_public_id(public_id):
        return rows.none()
    return rows.alias(_client_public_id=_public_id_digits(uuid_field)).filter(
        _client_public_id=public_id.removeprefix(PREFIX)
    )


def client_with_public_id(clients: QuerySet[Client], public_id: str) -> Client | None:
    """The client among ``clients`` with the public id ``public_id``, if any.

    Only clients of ``signed`` models have a public id anyone has seen, so only they are hashed.
    """
    signed = clients.filter(federated_models__client_auth=FederatedModel.ClientAuth.SIGNED)
    return filter_by_public_id(signed, public_id).first()
