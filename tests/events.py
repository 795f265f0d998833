"""Builders of the events AWS hands to a Lambda function behind API Gateway (REST v1, HTTP API v2) or an ALB.

Shapes follow the events AWS documents and sends, so the handler is tested against what it will see:
- REST (v1 proxy): ``headers`` and ``multiValueHeaders``, query parameters URL-decoded
  (``+`` as a space), ``null`` where a request has no query or body, ``requestContext.identity``.
- HTTP API (v2): lowercase ``headers`` (repeats joined by commas), ``cookies`` apart, ``rawQueryString``
  still encoded, keys left out when empty.
- ALB: ``requestContext.elb``, lowercase headers, query parameters passed on *still URL-encoded*;
  multi-value headers and query parameters only when the target group enables them.

``headers`` and ``query`` take a value or a list of values per name. ``body`` may be text or bytes;
``binary=True`` sends it base64-encoded with ``isBase64Encoded``, as AWS does for binary media types.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

HeaderValues = str | Sequence[str]

ACCOUNT_ID = "123456789012"
API_ID = "a1b2c3d4e5"
SOURCE_IP = "198.51.100.7"
TARGET_GROUP_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT_ID}:targetgroup/fma-api/49e9d65c45c6791a"
REQUEST_TIME = "27/Nov/2026:12:00:00 +0000"
REQUEST_TIME_EPOCH = 1795780800000
USER_AGENT = "fma-tests/1.0"

__all__ = ["make_alb_event", "make_context", "make_v1_event", "make_v2_event", "response_body"]


def make_v1_event(
    *,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, HeaderValues] | None = None,
    query: Mapping[str, HeaderValues] | None = None,
    body: str | bytes | None = None,
    binary: bool = False,
    host: str = "testserver",
    stage: str = "prod",
) -> dict[str, Any]:
    """An API Gateway REST API (v1 proxy integration on ``/{proxy+}``) event."""
    multi_headers = _forwarded_headers(headers, host=host, https=True, lowercase=False)
    multi_query = _multi(query)
    encoded_body, is_base64 = _encode_body(body, binary=binary)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": _last(multi_headers),
        "multiValueHeaders": multi_headers,
        "queryStringParameters": _last(multi_query) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "extendedRequestId": "c0Fk5Hf7IAMFZbA=",
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": SOURCE_IP,
                "user": None,
                "userAgent": USER_AGENT,
                "userArn": None,
            },
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": REQUEST_TIME,
            "requestTimeEpoch": REQUEST_TIME_EPOCH,
            "resourceId": "roq9wj",
            "resourcePath": "/{proxy+}",
            "stage": stage,
        },
        "body": encoded_body,
        "isBase64Encoded": is_base64,
    }


def make_v2_event(
    *,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, HeaderValues] | None = None,
    query: Mapping[str, HeaderValues] | None = None,
    body: str | bytes | None = None,
    binary: bool = False,
    host: str = "testserver",
    cookies: Sequence[str] = (),
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0, ``$default`` route) event."""
    multi_headers = _forwarded_headers(headers, host=host, https=True, lowercase=True)
    multi_query = _multi(query)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(multi_query, doseq=True, quote_via=quote),
        "headers": {name: ",".join(values) for name, values in multi_headers.items()},
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": REQUEST_TIME,
            "timeEpoch": REQUEST_TIME_EPOCH,
        },
        "isBase64Encoded": False,
    }
    # HTTP APIs leave out what a request does not have.
    if cookies:
        event["cookies"] = list(cookies)
    if multi_query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in multi_query.items()}
    if body is not None:
        event["body"], event["isBase64Encoded"] = _encode_body(body, binary=binary)
    return event


def make_alb_event(
    *,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, HeaderValues] | None = None,
    query: Mapping[str, HeaderValues] | None = None,
    body: str | bytes | None = None,
    binary: bool = False,
    host: str = "testserver",
    multi_value: bool = False,
) -> dict[str, Any]:
    """An Application Load Balancer event (``multi_value``: the target group's multi-value headers option)."""
    multi_headers = _forwarded_headers(headers, host=host, https=False, lowercase=True)
    # An ALB does not decode query parameters: they reach the function as the client encoded them.
    multi_query = {quote(key): [quote(value) for value in values] for key, values in _multi(query).items()}
    encoded_body, is_base64 = _encode_body(body, binary=binary)
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": TARGET_GROUP_ARN}},
        "httpMethod": method,
        "path": path,
        # An ALB sends an empty body as "", never null.
        "body": encoded_body or "",
        "isBase64Encoded": is_base64,
    }
    if multi_value:
        event["multiValueHeaders"] = multi_headers
        event["multiValueQueryStringParameters"] = multi_query
    else:
        event["headers"] = _last(multi_headers)
        event["queryStringParameters"] = _last(multi_query)
    return event


def response_body(response: dict[str, Any]) -> bytes:
    """The body of a Lambda proxy response as the client receives it."""
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def _multi(values: Mapping[str, HeaderValues] | None) -> dict[str, list[str]]:
    return {name: [value] if isinstance(value, str) else list(value) for name, value in (values or {}).items()}


def _forwarded_headers(
    headers: Mapping[str, HeaderValues] | None, *, host: str, https: bool, lowercase: bool
) -> dict[str, list[str]]:
    """The client's headers as the proxy passes them on.

    ``Host`` and ``User-Agent`` unless the client sent its own, then the ``X-Forwarded-*`` headers the
    proxy sets. HTTP APIs and ALBs lowercase every name; REST APIs keep the client's spelling.
    """

    def name(lowercase_name: str) -> str:
        return lowercase_name if lowercase else lowercase_name.title()

    given = _multi(headers)
    if lowercase:
        given = {key.lower(): values for key, values in given.items()}
    return {
        name("host"): [host],
        name("user-agent"): [USER_AGENT],
        **given,
        name("x-forwarded-for"): [SOURCE_IP],
        name("x-forwarded-port"): ["443" if https else "80"],
        name("x-forwarded-proto"): ["https" if https else "http"],
    }


def _last(multi: Mapping[str, list[str]]) -> dict[str, str]:
    # Single-value maps keep the last of repeated values, as API Gateway and the ALB do.
    return {key: values[-1] for key, values in multi.items()}


def _encode_body(body: str | bytes | None, *, binary: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    raw = body.encode() if isinstance(body, str) else body
    if binary:
        return base64.b64encode(raw).decode("ascii"), True
    return raw.decode(), False


def make_context(*, request_id: str = "8f5bd3c4-3d11-4a3b-9a8e-5e0d1c2b3a49") -> SimpleNamespace:
    """The attributes of a Lambda context object that handlers read."""
    return SimpleNamespace(
        aws_request_id=request_id,
        function_name="fma-api",
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:fma-api",
        memory_limit_in_mb=1024,
        log_group_name="/aws/lambda/fma-api",
        log_stream_name="2026/11/27/[$LATEST]0123456789abcdef",
        get_remaining_time_in_millis=lambda: 29_000,
    )
