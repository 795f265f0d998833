"""Lambda entry point of the API service: ``handler(event, context)``.

Cold start sets Django up once and resolves the HTTP handler named by
``API_SERVICE_SETTINGS["handler"]``; an unknown name stops the start with the registered choices.
Events are sorted in one place: the deploy-time events of ``operations`` (migrate the database,
create the first admin user), and HTTP events from API Gateway (REST v1, HTTP API v2) or an ALB.
Anything else is rejected by value.
"""

from __future__ import annotations

from typing import Any

from cold_start import setup_django

setup_django()

from fma_core.handlers import handlers  # noqa: E402  (needs Django set up)
from fma_django_connectors.conf import fma_settings  # noqa: E402
from operations import (  # noqa: E402
    bootstrap_admin,
    is_bootstrap_admin_event,
    is_migration_event,
    migrate_metadata_db,
)

__all__ = ["handler"]

_http_handler = handlers.get(fma_settings.API_SERVICE_SETTINGS["handler"], setting='API_SERVICE_SETTINGS["handler"]')


def _is_http_event(event: dict[str, Any]) -> bool:
    # REST v1, HTTP API v2 and ALB (``requestContext.elb``) events all carry a requestContext.
    return isinstance(event.get("requestContext"), dict)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one Lambda event."""
    if is_bootstrap_admin_event(event):
        return bootstrap_admin()
    if is_migration_event(event):
        return migrate_metadata_db()
    if _is_http_event(event):
        return _http_handler(event, context)
    raise ValueError(f"Unsupported event for the API service: keys {sorted(event)!r}")
