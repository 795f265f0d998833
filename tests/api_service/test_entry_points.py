"""``/`` through the Lambda entry: a browser goes to the dashboard, an API client learns the entry points."""

import json

import pytest

import service_initialization
from tests.events import make_alb_event, make_context, make_v1_event, make_v2_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_test_connection")]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
EVENT_KINDS = {"v1": make_v1_event, "v2": make_v2_event, "alb": make_alb_event}


def handle(event):
    return service_initialization.handler(event, make_context())


def _headers(response):
    """Header name (lowercase) → value, whichever shape the event kind answers with."""
    if "multiValueHeaders" in response:
        return {name.lower(): ", ".join(values) for name, values in response["multiValueHeaders"].items()}
    return {name.lower(): value for name, value in response["headers"].items()}


@pytest.fixture(params=list(EVENT_KINDS))
def build(request):
    return EVENT_KINDS[request.param]


def test_a_browser_is_sent_to_the_dashboard(build):
    response = handle(build(path="/", headers={"Accept": BROWSER_ACCEPT}))

    assert response["statusCode"] == 302
    assert _headers(response)["location"] == "/dashboard/"
    assert "Accept" in _headers(response)["vary"]


def test_the_dashboard_it_is_sent_to_asks_for_a_login():
    response = handle(make_v2_event(path="/dashboard/", headers={"Accept": BROWSER_ACCEPT}))

    assert response["statusCode"] == 302
    assert response["headers"]["location"].startswith("/dashboard/login/")


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"], ids=["no-accept", "anything", "json"])
def test_an_api_client_learns_the_entry_points(build, accept):
    response = handle(build(path="/", headers={"Accept": accept} if accept else None))

    assert response["statusCode"] == 200
    assert _headers(response)["content-type"] == "application/json"
    body = json.loads(response["body"])
    # Absolute, with the scheme the request came in with (API Gateway: HTTPS; the test's ALB: HTTP).
    origin = "http://testserver" if build is make_alb_event else "https://testserver"
    assert {name: url for name, url in body.items() if name != "detail"} == {
        "dashboard": f"{origin}/dashboard/",
        "docs": f"{origin}/api/docs/",
        "schema": f"{origin}/api/schema/",
        "api": f"{origin}/api/v1/",
        "token": f"{origin}/api-token-auth/",
        "admin": f"{origin}/admin/",
    }
    assert "dashboard" in body["detail"]


@pytest.mark.parametrize("name", ["docs", "schema", "token"])
def test_every_entry_point_named_answers(name):
    """The links lead somewhere: docs and schema answer a browser, the token route takes a POST."""
    url = json.loads(handle(make_v2_event(path="/"))["body"])[name]
    path = url.removeprefix("https://testserver")

    response = handle(make_v2_event(path=path, method="POST" if name == "token" else "GET"))

    assert response["statusCode"] == (400 if name == "token" else 200)


def test_a_write_to_the_root_is_a_json_405():
    response = handle(make_v2_event(method="POST", path="/", body="{}", headers={"Content-Type": "application/json"}))

    assert response["statusCode"] == 405
    assert json.loads(response["body"]) == {"detail": 'Method "POST" not allowed.'}
