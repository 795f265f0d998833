"""Lambda entry point of the API service: ``handler(event, context)``.

Cold start sets Django up once and resolves the HTTP handler named by
``API_SERVICE_SETTINGS["handler"]``; an unknown name stops the start with the registered choices.
Events are sorted in one place: the database-migration event, and HTTP events from API Gateway
(REST v1, HTTP API v2) or an ALB. Anything else is rejected by value.
"""

from __future__ import annotations

import json
from typing import Any

from cold_start import setup_django

settings = setup_django()

from django.core.management import call_command  # noqa: E402  (needs Django set up)

from fma_core.handlers import handlers  # noqa: E402

__all__ = ["handler"]

_http_handler = handlers.get(settings.API_SERVICE_SETTINGS["handler"], setting='API_SERVICE_SETTINGS["handler"]')

_MIGRATION_REQUEST = "update_metadata_db"


def _is_migration_event(event: dict[str, Any]) -> bool:
    return _MIGRATION_REQUEST in str(event.get("detail", ""))


def _is_http_event(event: dict[str, Any]) -> bool:
    # REST v1, HTTP API v2 and ALB (``requestContext.elb``) events all carry a requestContext.
    return isinstance(event.get("requestContext"), dict)


def _migrate_metadata_db() -> dict[str, Any]:
    call_command("migrate", interactive=False, verbosity=0)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"data": "database updated successfully"}),
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one Lambda event."""
    if _is_migration_event(event):
        return _migrate_metadata_db()
    if _is_http_event(event):
        return _http_handler(event, context)
    raise ValueError(f"Unsupported event for the API service: keys {sorted(event)!r}")
