"""The Lambda entry ``service_initialization.handler``, one class per kind of event it receives."""

import base64
import json
import re
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path

import django.contrib.admin
import pytest
from rest_framework.authtoken.models import Token

import service_initialization
from fma_django_connectors.gateway import lambda_handler
from tests.cold_starts import cold_start, last_error_line
from tests.events import make_alb_event, make_context, make_v1_event, make_v2_event, response_body

pytestmark = pytest.mark.usefixtures("keep_test_connection")

REPOSITORY = Path(__file__).resolve().parents[2]
ICON = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "img" / "icon-yes.svg"
ICON_URL = "/static/admin/img/icon-yes.svg"
PASSWORD = "correct horse battery staple"
METHOD_NOT_ALLOWED = '{"detail":"Method \\"GET\\" not allowed."}'
# Headers of a DRF 405 as Django sends them, in order.
METHOD_NOT_ALLOWED_HEADERS = [
    ("Content-Type", "application/json"),
    ("Allow", "POST, OPTIONS"),
    ("X-Frame-Options", "DENY"),
    ("Content-Length", str(len(METHOD_NOT_ALLOWED))),
    ("Vary", "Cookie"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    # API answers must not be cached (the token route's included).
    ("Cache-Control", "no-store"),
]


def handle(event):
    return service_initialization.handler(event, make_context())


@pytest.fixture
def developer(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password=PASSWORD)


def _credentials_json():
    return json.dumps({"username": "ada", "password": PASSWORD})


def _login_form(csrf_token):
    return f"csrfmiddlewaretoken={csrf_token}&username=root&password={PASSWORD.replace(' ', '+')}&next=%2Fadmin%2F"


def _cookie_values(set_cookie_headers):
    cookies = SimpleCookie()
    for header in set_cookie_headers:
        cookies.load(header)
    return {name: morsel.value for name, morsel in cookies.items()}


# Every kind of event the handler serves; an ALB target group may enable multi-value headers.
EVENT_KINDS = {
    "v1": make_v1_event,
    "v2": make_v2_event,
    "alb": make_alb_event,
    "alb-multi-value": partial(make_alb_event, multi_value=True),
}
MULTI_VALUE_RESPONSE = {
    "statusCode": 405,
    "multiValueHeaders": {name: [value] for name, value in METHOD_NOT_ALLOWED_HEADERS},
    "isBase64Encoded": False,
    "body": METHOD_NOT_ALLOWED,
}
SINGLE_VALUE_RESPONSE = {
    "statusCode": 405,
    "headers": dict(METHOD_NOT_ALLOWED_HEADERS),
    "isBase64Encoded": False,
    "body": METHOD_NOT_ALLOWED,
}


def _v1_without_multi_value_headers(**request):
    event = make_v1_event(**request)
    del event["multiValueHeaders"]
    return event


def _header(response, name):
    """The values of a response header, from whichever header map the event kind is answered with."""
    headers = response.get("multiValueHeaders") or {key: [value] for key, value in response["headers"].items()}
    return [value for key, values in headers.items() if key.lower() == name.lower() for value in values]


@pytest.fixture(params=list(EVENT_KINDS))
def build(request):
    return EVENT_KINDS[request.param]


@pytest.mark.django_db
class TestWholeResponse:
    """The response mirrors the event: header maps like the request's, v2 with lowercase names and cookies apart."""

    @pytest.mark.parametrize(
        ("build_event", "expected"),
        [
            pytest.param(EVENT_KINDS["v1"], MULTI_VALUE_RESPONSE, id="v1"),
            pytest.param(_v1_without_multi_value_headers, SINGLE_VALUE_RESPONSE, id="v1-single-value-headers-only"),
            pytest.param(
                EVENT_KINDS["v2"],
                {
                    "statusCode": 405,
                    "headers": {name.lower(): value for name, value in METHOD_NOT_ALLOWED_HEADERS},
                    "cookies": [],
                    "isBase64Encoded": False,
                    "body": METHOD_NOT_ALLOWED,
                },
                id="v2",
            ),
            pytest.param(EVENT_KINDS["alb"], SINGLE_VALUE_RESPONSE, id="alb"),
            pytest.param(EVENT_KINDS["alb-multi-value"], MULTI_VALUE_RESPONSE, id="alb-multi-value"),
        ],
    )
    def test_get(self, build_event, expected):
        assert handle(build_event(path="/api-token-auth/")) == expected


@pytest.mark.django_db
class TestEveryEventKind:
    @pytest.mark.parametrize("binary", [False, True], ids=["text-body", "base64-body"])
    def test_post_json(self, build, developer, binary):
        event = build(
            method="POST",
            path="/api-token-auth/",
            headers={"Content-Type": "application/json"},
            body=_credentials_json(),
            binary=binary,
        )

        response = handle(event)

        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == {"token": Token.objects.get(user=developer).key}

    def test_post_bad_credentials(self, build, developer):
        event = build(
            method="POST",
            path="/api-token-auth/",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"username": "ada", "password": "wrong"}),
        )

        response = handle(event)

        assert response["statusCode"] == 400
        assert json.loads(response["body"]) == {"non_field_errors": ["Unable to log in with provided credentials."]}

    def test_binary_response(self, build):
        response = handle(build(path=ICON_URL))

        assert response["statusCode"] == 200
        assert _header(response, "Content-Type") == ["image/svg+xml"]
        assert response["isBase64Encoded"] is True
        assert response_body(response) == ICON.read_bytes()

    def test_querystring_decoded_plus_and_percent(self, build):
        # v1 events carry the query decoded, v2 events the raw query string, ALB events still URL-encoded values.
        event = build(path="/admin/login/", query={"next": "/admin/a b+c/"})

        response = handle(event)

        assert response["statusCode"] == 200
        assert '<input type="hidden" name="next" value="/admin/a b+c/">' in response["body"]


@pytest.mark.django_db
class TestV1Events:
    def test_path_percent_encoded(self):
        response = handle(make_v1_event(path="/static/admin/img/icon%2Dyes.svg"))

        assert response_body(response) == ICON.read_bytes()

    def test_admin_login_sets_several_cookies(self, admin_user):
        page = handle(make_v1_event(path="/admin/login/"))
        csrf_token = _cookie_values(page["multiValueHeaders"]["Set-Cookie"])["csrftoken"]
        event = make_v1_event(
            method="POST",
            path="/admin/login/",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_token}",
                # Behind API Gateway the request is HTTPS, where Django's CSRF check also wants a Referer.
                "Referer": "https://testserver/admin/login/",
            },
            body=_login_form(csrf_token),
        )

        response = handle(event)

        assert response["statusCode"] == 302
        assert response["multiValueHeaders"]["Location"] == ["/admin/"]
        assert set(_cookie_values(response["multiValueHeaders"]["Set-Cookie"])) == {"csrftoken", "sessionid"}

    def test_admin_static_css(self):
        response = handle(make_v1_event(path="/static/admin/css/base.css"))

        assert response["statusCode"] == 200
        assert response["isBase64Encoded"] is False
        assert response["multiValueHeaders"]["Content-Type"] == ['text/css; charset="utf-8"']


@pytest.mark.django_db
class TestV2Events:
    def test_cookies_both_ways(self, admin_user):
        page = handle(make_v2_event(path="/admin/login/"))
        csrf_token = _cookie_values(page["cookies"])["csrftoken"]
        login = handle(
            make_v2_event(
                method="POST",
                path="/admin/login/",
                headers={"content-type": "application/x-www-form-urlencoded", "referer": "https://testserver/"},
                cookies=[f"csrftoken={csrf_token}"],
                body=_login_form(csrf_token),
            )
        )
        session = _cookie_values(login["cookies"])["sessionid"]

        index = handle(make_v2_event(path="/admin/", cookies=[f"sessionid={session}"]))

        assert login["statusCode"] == 302
        assert "set-cookie" not in login["headers"]
        assert index["statusCode"] == 200
        assert "Site administration" in index["body"]


@pytest.mark.django_db
class TestMigrationEvent:
    MIGRATED = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"data": "database updated successfully"}',
    }

    def test_detail_string(self):
        assert handle({"detail": "update_metadata_db"}) == self.MIGRATED

    def test_scheduled_event_shape(self):
        event = {
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {"request": "update_metadata_db"},
        }

        assert handle(event) == self.MIGRATED


class TestUnknownEvents:
    @pytest.mark.parametrize(
        ("event", "keys"),
        [
            ({}, "[]"),
            ({"model_id": 3}, "['model_id']"),
            ({"detail": {"model_id": 3}}, "['detail']"),
            ({"Records": [{"eventSource": "aws:s3"}]}, "['Records']"),
        ],
    )
    def test_rejected_by_value(self, event, keys):
        with pytest.raises(ValueError, match=re.escape(f"Unsupported event for the API service: keys {keys}")):
            handle(event)

    def test_unknown_payload_version(self):
        event = make_v2_event()
        event["version"] = "3.0"

        with pytest.raises(ValueError, match=re.escape("Unknown version '3.0'")):
            handle(event)


@pytest.mark.django_db
class TestWarmContainer:
    def test_wsgi_app_built_once(self, monkeypatch):
        built = []
        real = lambda_handler.get_wsgi_application

        def counting_get_wsgi_application():
            built.append(1)
            return real()

        monkeypatch.setattr(lambda_handler, "get_wsgi_application", counting_get_wsgi_application)
        lambda_handler._apig_wsgi_handler.cache_clear()

        statuses = [handle(build(path="/api-token-auth/"))["statusCode"] for build in (make_v1_event, make_v2_event)]
        statuses.append(handle(make_alb_event(path="/api-token-auth/"))["statusCode"])

        assert statuses == [405, 405, 405]
        assert len(built) == 1


class TestHandlerSetting:
    def test_unknown_handler_stops_the_cold_start(self, tmp_path):
        process = cold_start(tmp_path, 'API_SERVICE_SETTINGS = {"handler": "no_such_handler"}')

        assert process.returncode == 1
        assert last_error_line(process) == (
            "fma_core.exceptions.ConfigurationError: Unknown handler 'no_such_handler' "
            '(setting API_SERVICE_SETTINGS["handler"]); registered: django_lambda_handler'
        )


@pytest.mark.django_db
class TestResponseLimit:
    """An answer Lambda could not return (over ``FMA_RESPONSE_MAX_BYTES``) becomes a 413 JSON naming the way out."""

    def test_oversized_answer_is_a_413(self, build, developer, settings):
        from fma_django_connectors import services

        for index in range(40):
            services.model_create(developer=developer, name=f"model {index}", aggregator="avg_values_if_data")
        settings.FMA_RESPONSE_MAX_BYTES = 4000
        basic = "Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
        response = handle(build(path="/api/v1/models/", headers={"Authorization": basic}))
        assert response["statusCode"] == 413
        detail = json.loads(response_body(response))["detail"]
        assert re.fullmatch(
            r"The response would be \d+ bytes, more than the 4000 bytes an AWS Lambda function can return\. "
            r"Ask for weights in a binary format \(\?format=safetensors or \?format=npz\): large ones are answered "
            r"with a 303 redirect to a download URL\.",
            detail,
        )
        assert _header(response, "Content-Type") == ["application/json"]
        assert len(json.dumps(response)) <= 4000

    def test_answer_under_the_limit_is_untouched(self, build, developer):
        basic = "Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
        response = handle(build(path="/api/v1/models/", headers={"Authorization": basic}))
        assert response["statusCode"] == 200
        assert json.loads(response_body(response)) == []
