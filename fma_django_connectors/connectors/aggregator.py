"""``DjangoAggConnector``: the Django metadata and model-data connectors, bound for one aggregation."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, ProgrammingError

from fma_core.connectors.base import AggregatorConnector


class DjangoAggConnector(AggregatorConnector):
    """Aggregation over the Django ORM and Django storage (the connectors ``AGGREGATOR_SETTINGS`` names)."""

    def is_infrastructure_failure(self, error: BaseException) -> bool:
        """Also: the database unreachable, its connection lost or a statement refused (``ProgrammingError``: a
        missing privilege of the application role, a schema behind the code), S3 (botocore) or the local folder
        failing.

        A file that is missing (S3's ``NoSuchKey``, a local ``FileNotFoundError``) is the update's fault, not the
        storage's: retrying the run cannot bring it back.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(error, ClientError):
            return error.response.get("Error", {}).get("Code") not in _MISSING_OBJECT_CODES
        if isinstance(error, OperationalError | InterfaceError | ProgrammingError | BotoCoreError):
            return True
        if isinstance(error, OSError):
            return not isinstance(error, FileNotFoundError)
        return super().is_infrastructure_failure(error)


# What S3 answers for a key that does not exist: GetObject's code, HeadObject's bare status.
_MISSING_OBJECT_CODES = ("NoSuchKey", "404")
