"""The events AWS hands to a Lambda function behind API Gateway (REST v1, HTTP API v2) or an ALB, built
from one description of an HTTP request; and the HTTP response a Lambda proxy answer stands for.

The local server (``api_service/local_server.py``) turns every request it receives into one of these
events, and the tests build theirs here too, so both speak exactly what AWS sends:

- REST (v1 proxy on ``/{proxy+}``): ``headers`` and ``multiValueHeaders`` in the client's spelling, query
  parameters URL-decoded (``+`` as a space), ``null`` where a request has no query or body,
  ``requestContext.identity``.
- HTTP API (v2, ``$default`` route): lowercase ``headers`` (repeats joined by commas), ``cookies`` apart,
  ``rawQueryString`` still encoded, keys left out when a request does not have them.
- ALB: ``requestContext.elb``, lowercase headers, query parameters passed on *still URL-encoded*;
  multi-value headers and query parameters only when the target group enables them.

A body travels as text when its media type is textual and it is UTF-8, otherwise base64-encoded with
``isBase64Encoded``, as API Gateway does for binary media types (``binary`` forces either way).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "GatewayRequest",
    "LambdaContext",
    "alb_event",
    "forwarding_headers",
    "http_api_event",
    "response_parts",
    "rest_event",
]

# requestContext's time, as API Gateway writes it.
_REQUEST_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S +0000"
# Bodies of these media types travel as text in the event; any other body is base64-encoded.
_TEXT_MEDIA_PREFIXES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
)
_TEXT_MEDIA_SUFFIXES = ("+json", "+xml")
# These describe the connection to the client, which is the front server's business, not the function's.
_CONNECTION_HEADERS = frozenset({"transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True)
class GatewayRequest:
    """One HTTP request as the proxy in front of the function received it.

    ``headers`` are (name, value) pairs in arrival order, the proxy's ``X-Forwarded-*`` included (see
    :func:`forwarding_headers`); ``raw_query`` is the query string as the client encoded it; ``body`` None
    means the request had none. ``binary`` None decides the body's encoding from its ``Content-Type``.
    """

    method: str
    path: str
    raw_query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    binary: bool | None = None
    source_ip: str = "127.0.0.1"
    request_id: str = "local"
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    account_id: str = "000000000000"
    api_id: str = "local"
    # The REST API stage; HTTP APIs always use "$default".
    stage: str = "local"


def forwarding_headers(*, client_ip: str, port: int, scheme: str) -> list[tuple[str, str]]:
    """The headers API Gateway and the ALB add; apig-wsgi reads the client address and scheme from them."""
    return [("X-Forwarded-For", client_ip), ("X-Forwarded-Port", str(port)), ("X-Forwarded-Proto", scheme)]


def rest_event(request: GatewayRequest) -> dict[str, Any]:
    """An API Gateway REST API event (payload format 1.0, proxy integration on ``/{proxy+}``)."""
    headers = _group(request.headers, fold_case=True)
    query = _group(parse_qsl(request.raw_query, keep_blank_values=True), fold_case=False)
    body, is_base64 = _encode_body(request)
    host = _last(headers, "Host")
    # A REST API sends null, not an empty map, where a request has no query string.
    return {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {key: values[-1] for key, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": request.path.lstrip("/")} if request.path.strip("/") else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": request.account_id,
            "apiId": request.api_id,
            "domainName": host,
            "domainPrefix": host.split(".")[0] if host else None,
            "httpMethod": request.method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": request.source_ip,
                "user": None,
                "userAgent": _last(headers, "User-Agent"),
                "userArn": None,
            },
            "path": f"/{request.stage}{request.path}",
            "protocol": "HTTP/1.1",
            "requestId": request.request_id,
            "requestTime": request.time.strftime(_REQUEST_TIME_FORMAT),
            "requestTimeEpoch": int(request.time.timestamp() * 1000),
            "resourcePath": "/{proxy+}",
            "stage": request.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def http_api_event(request: GatewayRequest) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0, ``$default`` route)."""
    multi_headers = _group(request.headers, fold_case=True)
    # An HTTP API lowercases header names, joins repeats with commas and moves cookies to their own list.
    headers = {name.lower(): ",".join(values) for name, values in multi_headers.items() if name.lower() != "cookie"}
    cookies = [part.strip() for value in _all(multi_headers, "Cookie") for part in value.split(";") if part.strip()]
    query = _group(parse_qsl(request.raw_query, keep_blank_values=True), fold_case=False)
    host = headers.get("host")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": request.account_id,
            "apiId": request.api_id,
            "domainName": host,
            "domainPrefix": host.split(".")[0] if host else None,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent"),
            },
            "requestId": request.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": request.time.strftime(_REQUEST_TIME_FORMAT),
            "timeEpoch": int(request.time.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    # HTTP APIs leave out what a request does not have.
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    if request.body is not None:
        event["body"], event["isBase64Encoded"] = _encode_body(request)
    return event


def alb_event(request: GatewayRequest, *, multi_value: bool = False, target_group_arn: str) -> dict[str, Any]:
    """An Application Load Balancer event (``multi_value``: the target group's multi-value headers option)."""
    headers = {name.lower(): values for name, values in _group(request.headers, fold_case=True).items()}
    # An ALB does not decode query parameters: they reach the function as the client encoded them.
    pairs = [part.partition("=") for part in request.raw_query.split("&") if part]
    query = _group(((key, value) for key, _, value in pairs), fold_case=False)
    body, is_base64 = _encode_body(request)
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": target_group_arn}},
        "httpMethod": request.method,
        "path": request.path,
        # An ALB sends an empty body as "", never null.
        "body": body or "",
        "isBase64Encoded": is_base64,
    }
    if multi_value:
        event["multiValueHeaders"] = headers
        event["multiValueQueryStringParameters"] = query
    else:
        # Single-value maps keep the last of repeated values.
        event["headers"] = {name: values[-1] for name, values in headers.items()}
        event["queryStringParameters"] = {key: values[-1] for key, values in query.items()}
    return event


def response_parts(response: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes of a Lambda proxy response, as API Gateway sends them on."""
    header_pairs = [
        (name, value) for name, values in (response.get("multiValueHeaders") or {}).items() for value in values
    ]
    # API Gateway merges both header maps; a name present in multiValueHeaders is taken from there.
    multi_names = {name.lower() for name, _ in header_pairs}
    header_pairs += [
        (name, value) for name, value in (response.get("headers") or {}).items() if name.lower() not in multi_names
    ]
    # HTTP API (2.0) responses carry their cookies apart.
    header_pairs += [("Set-Cookie", cookie) for cookie in response.get("cookies") or []]
    header_pairs = [(name, value.strip()) for name, value in header_pairs if name.lower() not in _CONNECTION_HEADERS]
    raw_body = response.get("body") or ""
    body = base64.b64decode(raw_body) if response.get("isBase64Encoded") else raw_body.encode()
    return int(response["statusCode"]), header_pairs, body


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that code may read."""

    aws_request_id: str
    function_name: str = "fma-api-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:fma-api-local"
    log_group_name: str = "/aws/lambda/fma-api-local"
    log_stream_name: str = "local"
    timeout_seconds: float = 30
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


def _group(pairs: Iterable[tuple[str, str]], *, fold_case: bool) -> dict[str, list[str]]:
    """Values by name, in arrival order; with ``fold_case`` a name keeps its first spelling."""
    grouped: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower() if fold_case else name, name)
        grouped.setdefault(key, []).append(value)
    return grouped


def _all(multi_headers: Mapping[str, list[str]], name: str) -> list[str]:
    return next((values for key, values in multi_headers.items() if key.lower() == name.lower()), [])


def _last(multi_headers: Mapping[str, list[str]], name: str) -> str | None:
    values = _all(multi_headers, name)
    return values[-1] if values else None


def _encode_body(request: GatewayRequest) -> tuple[str | None, bool]:
    body = request.body
    if body is None:
        return None, False
    binary = request.binary
    if binary is None:
        binary = not _is_text(_last(_group(request.headers, fold_case=True), "Content-Type"), body)
    if binary:
        return base64.b64encode(body).decode("ascii"), True
    return body.decode(), False


def _is_text(content_type: str | None, body: bytes) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    textual = not media_type or media_type.startswith(_TEXT_MEDIA_PREFIXES) or media_type.endswith(_TEXT_MEDIA_SUFFIXES)
    if not textual:
        return False
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True
