"""Events a deployment sends the functions once per deploy, not per request: migrate, and the first admin.

- ``{"detail": "update_metadata_db"}``: apply Django's migrations. Both functions accept it; deploys
  send it to the aggregator, whose 900 s timeout outlasts a long migration (the API's 30 s would not).
- ``{"detail": "bootstrap_admin"}`` (API function): create the first admin user from the Secrets
  Manager secret named by ``FMA_ADMIN_SECRET_ID`` (JSON ``{"username": ..., "password": ...}``), or
  leave things alone when an admin exists. The password never appears in an answer, log or error.
- ``{"detail": "delete_orphan_results"}`` (aggregator, after each deploy's migration): delete the result files
  no aggregate records that are older than the claim lease, listing the results folder (docs/aggregation.md).
- ``{"detail": "migrate_schedules"}`` (aggregator, after each deploy's migration): delete the EventBridge rules
  ``fma-scheduled-*`` earlier versions kept for this deployment's aggregator, and give the models with pending
  work their schedule in the deployment's group (``schedules.schedules_migrate``).
- A CloudFormation custom resource request (``RequestType`` Create, Update or Delete, with a ``ResponseURL``;
  template.yaml's ``DeployOperations``): Create and Update run the four above, in that order; Delete changes
  nothing. CloudFormation is always answered at the request's ``ResponseURL``, SUCCESS or FAILED with the reason.

Import after Django is set up (``cold_start.setup_django``).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import urllib3
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, transaction

from fma_core.connectors.factory import connector_from_settings
from fma_core.exceptions import ConfigurationError
from fma_django_connectors.aggregation.schedules import schedules_migrate
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.services import aggregate_orphans_delete
from secrets_managers import get_secrets_manager

__all__ = [
    "MIGRATION_REQUEST",
    "ORPHAN_RESULTS_REQUEST",
    "SCHEDULES_MIGRATION_REQUEST",
    "answer_custom_resource",
    "bootstrap_admin",
    "delete_orphan_results",
    "deploy_operations",
    "is_bootstrap_admin_event",
    "is_custom_resource_event",
    "is_migration_event",
    "migrate_metadata_db",
    "migrate_schedules",
]

logger = logging.getLogger(__name__)

MIGRATION_REQUEST = "update_metadata_db"
ORPHAN_RESULTS_REQUEST = "delete_orphan_results"
SCHEDULES_MIGRATION_REQUEST = "migrate_schedules"
_BOOTSTRAP_ADMIN_REQUEST = "bootstrap_admin"
ADMIN_SECRET_VARIABLE = "FMA_ADMIN_SECRET_ID"


def is_migration_event(event: dict[str, Any]) -> bool:
    """``{"detail": "update_metadata_db"}``, also inside an EventBridge envelope's detail."""
    return MIGRATION_REQUEST in str(event.get("detail", ""))


def is_bootstrap_admin_event(event: dict[str, Any]) -> bool:
    """Exactly ``{"detail": "bootstrap_admin"}``: creating a superuser is never guessed from a substring."""
    return event.get("detail") == _BOOTSTRAP_ADMIN_REQUEST


def _answer(status: int, data: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"data": data})}


def migrate_metadata_db() -> dict[str, Any]:
    """Apply every unapplied migration."""
    call_command("migrate", interactive=False, verbosity=0)
    return _answer(200, "database updated successfully")


def delete_orphan_results() -> dict[str, Any]:
    """Delete the result files no aggregate records, older than the claim lease (names stored before results were
    named after their claims, mostly)."""
    lease = connector_from_settings().claim_lease
    deleted = aggregate_orphans_delete(written_before=datetime.now(UTC) - lease)
    logger.info("delete_orphan_results: deleted %s", deleted)
    return _answer(200, f"deleted {len(deleted)} result file(s) no aggregate records")


def migrate_schedules() -> dict[str, Any]:
    """Delete this deployment's per-model EventBridge rules of earlier versions; schedule the models with work."""
    migrated = schedules_migrate()
    logger.info("migrate_schedules: %s", migrated)
    return _answer(
        200,
        f"deleted {len(migrated['deleted_rules'])} EventBridge rule(s) of earlier versions; "
        f"scheduled {len(migrated['scheduled_models'])} model(s) with pending work",
    )


def _admin_credentials() -> tuple[str, str]:
    secret_id = fma_settings.FMA_ADMIN_SECRET_ID
    if not secret_id:
        raise ConfigurationError(
            f"bootstrap_admin needs the environment variable {ADMIN_SECRET_VARIABLE}: the id of a Secrets Manager "
            'secret holding {"username": ..., "password": ...}'
        )
    get_secret = get_secrets_manager(
        fma_settings.API_SERVICE_SETTINGS["secrets_manager"], setting='API_SERVICE_SETTINGS["secrets_manager"]'
    )
    # An unreadable secret raises SecretUnavailableError, which names the secret and never its value.
    credentials = get_secret(secret_id)
    username = credentials.get("username") if isinstance(credentials, dict) else None
    password = credentials.get("password") if isinstance(credentials, dict) else None
    if not (isinstance(username, str) and username.strip() and isinstance(password, str) and password):
        # The value stays out of the message: it holds a password.
        raise ConfigurationError(
            f"Secret {secret_id!r} ({ADMIN_SECRET_VARIABLE}) must be JSON with non-empty "
            '"username" and "password" strings'
        )
    return username.strip(), password


def bootstrap_admin() -> dict[str, Any]:
    """Create the admin user of ``FMA_ADMIN_SECRET_ID`` unless that user or another superuser exists.

    An existing admin is never changed: its password may have been changed since, on purpose. Safe to
    repeat and to run concurrently (the username is unique; the loser of a race finds the user made).
    """
    username, password = _admin_credentials()
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists() or users.objects.filter(username=username).exists():
        logger.info("bootstrap_admin: an admin user exists; nothing changed")
        return _answer(200, "an admin user exists; nothing changed")
    try:
        with transaction.atomic():
            users.objects.create_superuser(username=username, password=password)
    except IntegrityError:
        logger.info("bootstrap_admin: %r was created meanwhile; nothing changed", username)
        return _answer(200, "an admin user exists; nothing changed")
    logger.info("bootstrap_admin: created the admin user %r", username)
    return _answer(201, f"admin user {username!r} created")


# --- CloudFormation custom resource ----------------------------------------------------------------------------------
# The protocol is one PUT of a small JSON document to a pre-signed S3 URL
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html). AWS's cfnresponse module
# exists only for inline template code, and crhelper configures the function's root logger as its own: the few
# lines below, on urllib3 (already in the artifact through botocore), do it with bounded retries instead.
_CUSTOM_RESOURCE_REQUESTS = frozenset({"Create", "Update", "Delete"})
# A response is at most 4096 bytes; the reason is cut well below that.
_REASON_LIMIT = 1000
# An unanswered request holds the stack for an hour: answer FAILED this long before Lambda stops the invocation.
_DEADLINE_MARGIN_SECONDS = 10
_response_pool = urllib3.PoolManager(
    timeout=urllib3.Timeout(connect=5, read=15),
    retries=urllib3.Retry(
        total=5, backoff_factor=1, status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"PUT"})
    ),
)


def is_custom_resource_event(event: dict[str, Any]) -> bool:
    """A CloudFormation custom resource request: a known ``RequestType`` and a ``ResponseURL`` to answer at."""
    return event.get("RequestType") in _CUSTOM_RESOURCE_REQUESTS and isinstance(event.get("ResponseURL"), str)


def deploy_operations() -> dict[str, str]:
    """What every deploy runs before the new code serves: the migration, the first admin, the orphan results sweep
    and the move of earlier versions' EventBridge rules to the deployment's schedules.

    Returns each one's answer, by name (the custom resource's ``Data``).
    """
    # In this order: the admin and the sweep need the migrated schema.
    operations = {
        "Migration": migrate_metadata_db,
        "Admin": bootstrap_admin,
        "OrphanResults": delete_orphan_results,
        "Schedules": migrate_schedules,
    }
    return {name: json.loads(operation()["body"])["data"] for name, operation in operations.items()}


class _CustomResourceAnswer:
    """CloudFormation's answer to one request, sent once: by the run, or by the deadline, whichever comes first."""

    def __init__(self, event: dict[str, Any], context: Any) -> None:
        self._event = event
        self._log_stream = getattr(context, "log_stream_name", None)
        self._lock = threading.Lock()
        self._sent = False

    def send(self, status: str, *, reason: str = "", data: dict[str, str] | None = None) -> None:
        with self._lock:
            if self._sent:
                return
            self._sent = True
        if self._log_stream:
            reason = f"{reason} (log stream {self._log_stream})".strip()
        event = self._event
        body = {
            "Status": status,
            "Reason": reason[:_REASON_LIMIT],
            # Kept on Update: a new id would make CloudFormation think the resource was replaced and send a Delete.
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
        # The URL is pre-signed without a content type: any Content-Type header would break its signature.
        response = _response_pool.request(
            "PUT", event["ResponseURL"], body=json.dumps(body).encode(), headers={"Content-Type": ""}
        )
        if response.status != 200:
            raise RuntimeError(f"CloudFormation's ResponseURL answered {response.status} to the {status} response")
        logger.info("custom resource %s: answered %s", event["LogicalResourceId"], status)


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None


def answer_custom_resource(event: dict[str, Any], context: Any) -> None:
    """Run the deploy operations for a custom resource's Create or Update (Delete changes nothing), then answer
    CloudFormation at the request's ``ResponseURL``: SUCCESS, or FAILED with the error as the reason.

    Every request is answered, even when an operation fails or the invocation is about to time out: CloudFormation
    would otherwise wait an hour before failing the stack.
    """
    answer = _CustomResourceAnswer(event, context)
    seconds_left = _seconds_left(context)
    deadline = None
    if seconds_left is not None:
        deadline = threading.Timer(
            max(0.0, seconds_left - _DEADLINE_MARGIN_SECONDS),
            answer.send,
            args=("FAILED",),
            kwargs={"reason": "the deploy operations did not finish within the function's timeout"},
        )
        deadline.daemon = True
        deadline.start()
    try:
        data = {} if event["RequestType"] == "Delete" else deploy_operations()
    except Exception as error:  # any failure is CloudFormation's FAILED, with its reason
        logger.exception("custom resource %s: the deploy operations failed", event.get("LogicalResourceId"))
        answer.send("FAILED", reason=f"{type(error).__name__}: {error}")
    else:
        answer.send("SUCCESS", data=data)
    finally:
        if deadline is not None:
            deadline.cancel()
