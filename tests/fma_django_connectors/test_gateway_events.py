"""API Gateway and ALB events built from one request description, and Lambda proxy responses taken apart."""

import base64
from datetime import UTC, datetime

import pytest

from fma_django_connectors.gateway.gateway_events import (
    GatewayRequest,
    alb_event,
    forwarding_headers,
    http_api_event,
    response_parts,
    rest_event,
)

WHEN = datetime(2026, 11, 27, 23, 12, 54, tzinfo=UTC)
FORWARDED = tuple(forwarding_headers(client_ip="127.0.0.1", port=8000, scheme="http"))
EVENTS = {"rest": rest_event, "http-api": http_api_event}


class TestRestEvent:
    def test_whole_event(self):
        request = GatewayRequest(
            method="POST",
            path="/api/v1/model_updates/",
            raw_query="federated_model=3&status=0&status=1&q=a+b%2Bc&empty=",
            headers=(
                ("Host", "127.0.0.1:8000"),
                ("Content-Type", "application/json"),
                ("Accept", "a"),
                ("accept", "b"),
                *FORWARDED,
            ),
            body=b'{"data": [1]}',
            source_ip="127.0.0.1",
            request_id="rid-1",
            time=WHEN,
        )

        event = rest_event(request)
        request_context = event.pop("requestContext")

        assert event == {
            "resource": "/{proxy+}",
            "path": "/api/v1/model_updates/",
            "httpMethod": "POST",
            "headers": {
                "Host": "127.0.0.1:8000",
                "Content-Type": "application/json",
                "Accept": "b",
                "X-Forwarded-For": "127.0.0.1",
                "X-Forwarded-Port": "8000",
                "X-Forwarded-Proto": "http",
            },
            "multiValueHeaders": {
                "Host": ["127.0.0.1:8000"],
                "Content-Type": ["application/json"],
                "Accept": ["a", "b"],
                "X-Forwarded-For": ["127.0.0.1"],
                "X-Forwarded-Port": ["8000"],
                "X-Forwarded-Proto": ["http"],
            },
            "queryStringParameters": {"federated_model": "3", "status": "1", "q": "a b+c", "empty": ""},
            "multiValueQueryStringParameters": {
                "federated_model": ["3"],
                "status": ["0", "1"],
                "q": ["a b+c"],
                "empty": [""],
            },
            "pathParameters": {"proxy": "api/v1/model_updates/"},
            "stageVariables": None,
            "body": '{"data": [1]}',
            "isBase64Encoded": False,
        }
        identity = request_context.pop("identity")
        assert request_context == {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1:8000",
            "domainPrefix": "127",
            "httpMethod": "POST",
            "path": "/local/api/v1/model_updates/",
            "protocol": "HTTP/1.1",
            "requestId": "rid-1",
            "requestTime": "27/Nov/2026:23:12:54 +0000",
            "requestTimeEpoch": int(WHEN.timestamp() * 1000),
            "resourcePath": "/{proxy+}",
            "stage": "local",
        }
        assert (identity["sourceIp"], identity["userAgent"]) == ("127.0.0.1", None)

    def test_no_query_no_body(self):
        event = rest_event(GatewayRequest(method="GET", path="/"))

        assert event["queryStringParameters"] is None
        assert event["multiValueQueryStringParameters"] is None
        assert event["pathParameters"] is None
        assert (event["body"], event["isBase64Encoded"]) == (None, False)


class TestHttpApiEvent:
    def test_whole_event(self):
        request = GatewayRequest(
            method="GET",
            path="/admin/",
            raw_query="q=a+b%2Bc&q=d",
            headers=(("Host", "localhost:8000"), ("Cookie", "a=1; b=2"), ("Accept", "x"), ("ACCEPT", "y"), *FORWARDED),
            source_ip="127.0.0.1",
            request_id="rid-2",
            time=WHEN,
        )

        event = http_api_event(request)
        request_context = event.pop("requestContext")

        assert event == {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/admin/",
            "rawQueryString": "q=a+b%2Bc&q=d",
            "cookies": ["a=1", "b=2"],
            "headers": {
                "host": "localhost:8000",
                "accept": "x,y",
                "x-forwarded-for": "127.0.0.1",
                "x-forwarded-port": "8000",
                "x-forwarded-proto": "http",
            },
            "queryStringParameters": {"q": "a b+c,d"},
            "isBase64Encoded": False,
        }
        assert request_context == {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost:8000",
            "domainPrefix": "localhost:8000",
            "http": {
                "method": "GET",
                "path": "/admin/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": None,
            },
            "requestId": "rid-2",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:23:12:54 +0000",
            "timeEpoch": int(WHEN.timestamp() * 1000),
        }

    def test_no_query_no_body(self):
        event = http_api_event(GatewayRequest(method="GET", path="/"))

        assert event["rawQueryString"] == ""
        assert "queryStringParameters" not in event
        assert "body" not in event
        assert event["isBase64Encoded"] is False


class TestAlbEvent:
    def test_query_stays_encoded_and_single_values_are_the_last(self):
        request = GatewayRequest(
            method="GET",
            path="/x/",
            raw_query="q=a%20b&q=c%2Bd",
            headers=(("Host", "h"), ("Accept", "1"), ("Accept", "2")),
        )

        event = alb_event(request, target_group_arn="arn:tg")

        assert event == {
            "requestContext": {"elb": {"targetGroupArn": "arn:tg"}},
            "httpMethod": "GET",
            "path": "/x/",
            "body": "",
            "isBase64Encoded": False,
            "headers": {"host": "h", "accept": "2"},
            "queryStringParameters": {"q": "c%2Bd"},
        }

    def test_multi_value(self):
        request = GatewayRequest(
            method="GET", path="/", raw_query="q=1&q=2", headers=(("Accept", "1"), ("Accept", "2"))
        )

        event = alb_event(request, multi_value=True, target_group_arn="arn:tg")

        assert event["multiValueHeaders"] == {"accept": ["1", "2"]}
        assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"]}
        assert "headers" not in event


@pytest.mark.parametrize(
    ("content_type", "body", "is_base64"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n\x00", True),
        ("application/octet-stream", b"plain ascii", True),
        ("application/json", b"\xff\xfe not utf-8", True),
        ("application/json; charset=utf-8", '{"name": "modèle"}'.encode(), False),
        ("application/problem+json", b"{}", False),
        ("text/plain", b"hello", False),
    ],
)
@pytest.mark.parametrize("kind", EVENTS)
def test_body_encoding_follows_the_media_type(content_type, body, is_base64, kind):
    event = EVENTS[kind](GatewayRequest(method="POST", path="/", headers=(("Content-Type", content_type),), body=body))

    assert event["isBase64Encoded"] is is_base64
    assert (base64.b64decode(event["body"]) if is_base64 else event["body"].encode()) == body


@pytest.mark.parametrize("kind", EVENTS)
def test_binary_forces_base64(kind):
    event = EVENTS[kind](
        GatewayRequest(method="POST", path="/", headers=(("Content-Type", "text/plain"),), body=b"hi", binary=True)
    )

    assert (event["body"], event["isBase64Encoded"]) == ("aGk=", True)


class TestResponseParts:
    def test_multi_value_headers_and_base64_body(self):
        response = {
            "statusCode": 201,
            "multiValueHeaders": {
                "Content-Type": ["image/png"],
                "Set-Cookie": [" a=1; Path=/", " b=2; Path=/"],
                "Content-Length": ["999"],
                "Transfer-Encoding": ["chunked"],
            },
            "headers": {"X-Only-Single": "yes", "content-type": "ignored/duplicate"},
            "isBase64Encoded": True,
            "body": base64.b64encode(b"\x00\x01").decode(),
        }

        assert response_parts(response) == (
            201,
            [
                ("Content-Type", "image/png"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
                ("Content-Length", "999"),
                ("X-Only-Single", "yes"),
            ],
            b"\x00\x01",
        )

    def test_http_api_cookies(self):
        response = {
            "statusCode": 302,
            "headers": {"location": "/admin/"},
            "cookies": ["csrftoken=x; Path=/", "sessionid=y; HttpOnly; Path=/"],
            "isBase64Encoded": False,
            "body": "",
        }

        assert response_parts(response) == (
            302,
            [
                ("location", "/admin/"),
                ("Set-Cookie", "csrftoken=x; Path=/"),
                ("Set-Cookie", "sessionid=y; HttpOnly; Path=/"),
            ],
            b"",
        )

    def test_single_headers_text_body(self):
        response = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

        assert response_parts(response) == (200, [("Content-Type", "application/json")], b"{}")
