"""Application errors of the API and the one place that turns errors into JSON responses.

Services raise ``ApplicationError`` subclasses (or the core's ``FMAError`` family); the exception
handler maps them once, by whose fault they are:

- the caller's (``ApplicationError``, ``CallerError``, Django's ``ValidationError``): 4xx;
- the deployment's (``OperatorError``): ``ServiceUnavailableError`` (an AWS service unreachable or
  refusing, a secret that cannot be read, a schedule that cannot be changed) is a 503, anything else
  (``ConfigurationError``) a 500; a botocore error that escaped its call site, a database error and a
  filesystem error (the local model data folder) are 503s as well.
  The message names the setting or the service for the operator; it never holds a secret value.

A 503 is logged as one JSON line (status, error, cause, the Lambda and API Gateway request ids, method,
path) without a traceback; a 500 with its traceback.

The ``bad_request``/``permission_denied``/``not_found``/``server_error`` views make the errors Django
itself answers (outside DRF) JSON as well.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response

from fma_core.aws import aws_error
from fma_core.exceptions import CallerError, FMAError, ServiceUnavailableError

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A request the caller can fix; rendered as ``{field: message}`` (``{"detail": message}`` without a field)."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def body(self) -> dict[str, str]:
        return {self.field or "detail": self.message}


class SchemaMismatchError(ApplicationError):
    """A document does not match the JSON Schema its model requires."""


class DuplicateError(ApplicationError):
    """A second artifact with the same version, or a second score of one client for one aggregate."""


class KeyTakenError(ApplicationError):
    """A public key that is already another client's: a key names one client (409)."""

    status_code = status.HTTP_409_CONFLICT


class NotRegisteredError(ApplicationError):
    """A client acting on a model it is not registered to."""

    status_code = status.HTTP_403_FORBIDDEN


class RequestBodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self) -> None:
        super().__init__(
            f"Request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
        )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus application errors (4xx), operator errors (5xx) and over-large bodies (413)."""
    # Imported here: rest_framework.views loads the parser settings, and the parsers import this module.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, RequestDataTooBig):
        exc = RequestBodyTooLarge()
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(exc.body, status=exc.status_code)
    if isinstance(exc, CallerError):
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        body = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    exc = _as_operator_error(exc)
    if isinstance(exc, ServiceUnavailableError):
        set_rollback()
        response = Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        _log_unavailable(exc, context.get("request"))
        # Django would log the 503 once more ("Service Unavailable: /path", django.request): its log_response
        # skips a response marked so.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    if isinstance(exc, FMAError):
        set_rollback()
        # A 500 is a fault to fix (a setting): logged with its traceback. The caller only learns it is not theirs.
        logger.error("%s", exc, exc_info=exc)
        return Response({"detail": str(exc)}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return drf_exception_handler(exc, context)


def _log_unavailable(exc: ServiceUnavailableError, request: Any) -> None:
    """One JSON line for a 503, without a traceback: a dependency that is down fails every request alike, and a
    traceback each (hundreds a minute) says nothing more than the cause does, at CloudWatch's price per byte.

    ``request_id`` is the Lambda invocation's (``context.aws_request_id``), ``api_request_id`` API Gateway's
    (``requestContext.requestId``): the two ids an operator finds the request by in the function's and the
    stage's logs.
    """
    meta = getattr(request, "META", {})
    lambda_context = meta.get("apig_wsgi.context")
    request_context = meta.get("apig_wsgi.request_context") or {}
    cause = exc.__cause__
    logger.error(
        json.dumps(
            {
                "status": status.HTTP_503_SERVICE_UNAVAILABLE,
                "error": str(exc),
                "cause": f"{type(cause).__name__}: {cause}" if cause is not None else type(exc).__name__,
                "request_id": getattr(lambda_context, "aws_request_id", None),
                "api_request_id": request_context.get("requestId"),
                "method": getattr(request, "method", None),
                "path": getattr(request, "path", None),
            }
        )
    )


def _as_operator_error(exc: Exception) -> Exception:
    """A botocore error that no call site turned into an FMA error, or a database or storage that failed, as one
    (a 503); anything else unchanged."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        # A dropped connection (failover, a proxy's cut), a server down, SQLite's lock timeout: Django closes the
        # broken connection when the request ends, so the caller's retry gets a new one.
        unavailable = ServiceUnavailableError("The database is unavailable; try again.")
        unavailable.__cause__ = exc
        return unavailable

    if isinstance(exc, BotoCoreError | ClientError):
        # The one AWS service a request reaches without its own wrapper: S3, through django-storages.
        # Before OSError: botocore's timeouts are OSErrors too (they subclass requests' ReadTimeout).
        unavailable = aws_error(
            exc, action="Could not read or write model data", service="AWS S3", setting="FMA_MODEL_DATA_BUCKET"
        )
        unavailable.__cause__ = exc
        return unavailable

    if isinstance(exc, OSError) and not isinstance(exc, UnreadablePostError):
        # The local model data folder failed (a full disk, a read-only mount, a folder that is not one): a
        # request cannot reach the filesystem otherwise. The reason, not the path: the path is the operator's.
        unavailable = ServiceUnavailableError(
            f"Could not read or write model data: the storage failed ({exc.strerror or type(exc).__name__}); "
            "check the model data folder (MEDIA_ROOT) and try again."
        )
        unavailable.__cause__ = exc
        return unavailable

    return exc


def bad_request(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> JsonResponse:
    """Django's 400 view (``handler400``), in JSON; an over-large body is a 413."""
    if isinstance(exception, RequestDataTooBig):
        too_large = RequestBodyTooLarge()
        return JsonResponse({"detail": str(too_large.detail)}, status=too_large.status_code)
    return JsonResponse({"detail": "Bad request."}, status=status.HTTP_400_BAD_REQUEST)


def permission_denied(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> JsonResponse:
    """Django's 403 view (``handler403``), in JSON."""
    return JsonResponse({"detail": str(exceptions.PermissionDenied.default_detail)}, status=status.HTTP_403_FORBIDDEN)


def not_found(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> JsonResponse:
    """Django's 404 view (``handler404``), in JSON."""
    return JsonResponse({"detail": str(exceptions.NotFound.default_detail)}, status=status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Django's 500 view (``handler500``), in JSON and without a traceback."""
    return JsonResponse({"detail": "A server error occurred."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


class UploadGoneError(ApplicationError):
    """An upload that a concurrent completion refused and removed while this one waited for it."""

    status_code = status.HTTP_404_NOT_FOUND


class UploadNotReceivedError(ApplicationError):
    """Completing an upload whose bytes have not arrived (yet): the upload stays, the caller may send them."""

    status_code = status.HTTP_409_CONFLICT


class UploadExpiredError(ApplicationError):
    """Completing an upload after its ``expires_at``: it is removed with its bytes."""

    status_code = status.HTTP_410_GONE


class ResponseTooLargeError(ApplicationError):
    """A JSON response larger than a Lambda function may return; binary formats carry it instead."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
