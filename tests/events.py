"""The events of ``fma_django_connectors.gateway.gateway_events`` with test defaults: what AWS would send for a
request from ``SOURCE_IP`` to ``host`` over HTTPS (HTTP behind an ALB), at a fixed time.

``headers`` and ``query`` take a value or a list of values per name. ``body`` may be text or bytes;
``binary=True`` sends it base64-encoded with ``isBase64Encoded``, as AWS does for binary media types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fma_django_connectors.gateway.gateway_events import (
    GatewayRequest,
    LambdaContext,
    alb_event,
    forwarding_headers,
    http_api_event,
    response_parts,
    rest_event,
)

HeaderValues = str | Sequence[str]

ACCOUNT_ID = "123456789012"
API_ID = "a1b2c3d4e5"
SOURCE_IP = "198.51.100.7"
TARGET_GROUP_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT_ID}:targetgroup/fma-api/49e9d65c45c6791a"
REQUEST_TIME = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
USER_AGENT = "fma-tests/1.0"

__all__ = ["make_alb_event", "make_context", "make_v1_event", "make_v2_event", "response_body"]


def _request(
    *,
    method: str,
    path: str,
    headers: Mapping[str, HeaderValues] | None,
    query: Mapping[str, HeaderValues] | None,
    body: str | bytes | None,
    binary: bool,
    host: str,
    https: bool,
    cookies: Sequence[str] = (),
    stage: str = "prod",
    request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
) -> GatewayRequest:
    # Host and User-Agent unless the client sent its own, then the headers the proxy adds.
    given = [(name, value) for name, values in _multi(headers).items() for value in values]
    given_names = {name.lower() for name, _ in given}
    defaults = [
        (name, value) for name, value in (("Host", host), ("User-Agent", USER_AGENT)) if name.lower() not in given_names
    ]
    cookie_header = [("Cookie", "; ".join(cookies))] if cookies else []
    return GatewayRequest(
        method=method,
        path=path,
        raw_query=urlencode(_multi(query), doseq=True, quote_via=quote),
        headers=(
            *defaults,
            *given,
            *cookie_header,
            *forwarding_headers(client_ip=SOURCE_IP, port=443 if https else 80, scheme="https" if https else "http"),
        ),
        body=body.encode() if isinstance(body, str) else body,
        binary=binary,
        source_ip=SOURCE_IP,
        request_id=request_id,
        time=REQUEST_TIME,
        account_id=ACCOUNT_ID,
        api_id=API_ID,
        stage=stage,
    )


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
    return rest_event(
        _request(
            method=method,
            path=path,
            headers=headers,
            query=query,
            body=body,
            binary=binary,
            host=host,
            https=True,
            stage=stage,
        )
    )


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
    request = _request(
        method=method,
        path=path,
        headers=headers,
        query=query,
        body=body,
        binary=binary,
        host=host,
        https=True,
        cookies=cookies,
        request_id="JKJaXmPLvHcESHA=",
    )
    return http_api_event(request)


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
    request = _request(
        method=method, path=path, headers=headers, query=query, body=body, binary=binary, host=host, https=False
    )
    return alb_event(request, multi_value=multi_value, target_group_arn=TARGET_GROUP_ARN)


def response_body(response: dict[str, Any]) -> bytes:
    """The body of a Lambda proxy response as the client receives it."""
    return response_parts(response)[2]


def make_context(*, request_id: str = "8f5bd3c4-3d11-4a3b-9a8e-5e0d1c2b3a49") -> LambdaContext:
    """A Lambda context object as the handlers read it."""
    return LambdaContext(
        aws_request_id=request_id,
        function_name="fma-api",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:fma-api",
        log_group_name="/aws/lambda/fma-api",
        log_stream_name="2026/11/27/[$LATEST]0123456789abcdef",
    )


def _multi(values: Mapping[str, HeaderValues] | None) -> dict[str, list[str]]:
    return {name: [value] if isinstance(value, str) else list(value) for name, value in (values or {}).items()}
