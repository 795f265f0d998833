"""Errors of the client: each carries the HTTP status and the service's message."""

from __future__ import annotations

from typing import Any


class FMAClientError(Exception):
    """Anything the client could not do."""


class ServiceUnreachable(FMAClientError):
    """No answer from the service (connection refused, timed out), after the retries allowed."""


class APIError(FMAClientError):
    """The service answered with an error; ``status_code`` and its JSON ``body`` (or text) as ``message``.

    ``message`` is the service's ``detail`` when there is one, else the whole body (field errors).
    """

    def __init__(self, status_code: int, body: Any, *, method: str = "", url: str = "") -> None:
        self.status_code = status_code
        self.body = body
        self.method = method
        self.url = url
        self.message = body.get("detail", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {url} answered {status_code}: {self.message}")


class BadRequest(APIError):
    """400: a field or the body was refused; ``body`` names each field."""


class Unauthorized(APIError):
    """401: no credentials, an unknown or malformed ``CLIENT-UUID``, or a signature missing or refused."""


class Forbidden(APIError):
    """403: not allowed (for a client, often: not registered to the model)."""


class NotFound(APIError):
    """404: not found, or outside the caller's scope."""


class Conflict(APIError):
    """409: an upload completed before its bytes arrived, or a public key registered that is another client's."""


class Gone(APIError):
    """410: an upload expired."""


class PayloadTooLarge(APIError):
    """413: a body or an answer larger than the service can carry."""


class TooManyRequests(APIError):
    """429: throttled; retried by the client while its retries last (``Retry-After`` honoured)."""


class ServerError(APIError):
    """5xx: the service's side; retried for calls safe to repeat."""


class VersionTaken(APIError):
    """``publish`` of a version the model already has (the service answers 400); ``version`` names it."""

    def __init__(self, error: APIError, *, version: str) -> None:
        self.version = version
        super().__init__(error.status_code, error.body, method=error.method, url=error.url)
        self.args = (f"version {version!r} is taken: {self.message}",)


class AggregateTimeout(FMAClientError, TimeoutError):
    """No new aggregate within the time waited (``timeout`` of ``wait_for_aggregate``)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    429: TooManyRequests,
}


def error_for(status_code: int, body: Any, *, method: str = "", url: str = "") -> APIError:
    """The typed error of an answer."""
    kind = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIError)
    return kind(status_code, body, method=method, url=url)


# Upstream fma_connect's name for an error answer, so that ``except APIException`` keeps working.
APIException = APIError
