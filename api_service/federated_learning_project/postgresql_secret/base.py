"""Django's PostgreSQL backend, plus one retry with credentials read again when the password is refused."""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.postgresql import base

from .credentials import SETTING, database_credentials

logger = logging.getLogger(__name__)


def _password_refused(error: Exception) -> bool:
    # libpq reports it only in words (no SQLSTATE before the session exists).
    return "password authentication failed" in str(error)


class DatabaseWrapper(base.DatabaseWrapper):
    """Connects with ``USER``/``PASSWORD``; if the server refuses the password, reads
    ``CREDENTIALS_SECRET`` again (once, bypassing the secrets cache) and retries with what it holds.
    ``CREDENTIALS_SETTING`` names the variable that gave the secret's id, for errors (default ``FMA_DB_SECRET_PATH``).
    """

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        try:
            return super().get_new_connection(conn_params)
        except self.Database.OperationalError as refused:
            secret_id = self.settings_dict.get("CREDENTIALS_SECRET")
            if not secret_id or not _password_refused(refused):
                raise
        setting = self.settings_dict.get("CREDENTIALS_SETTING", SETTING)
        user, password = database_credentials(secret_id, setting=setting, fresh=True)
        logger.warning("The database refused the password of %r: read secret %r again (rotated?)", user, secret_id)
        # The settings dict is shared by every connection of this alias: they all take the new credentials.
        self.settings_dict["USER"], self.settings_dict["PASSWORD"] = user, password
        try:
            return super().get_new_connection({**conn_params, "user": user, "password": password})
        except self.Database.OperationalError as again:
            if not _password_refused(again):
                raise
            raise self.Database.OperationalError(
                f"The database refused the password of user {user!r} from secret {secret_id!r} ({setting}), "
                "read again just now: the secret does not hold the user's current password"
            ) from None
