"""Brakes on abuse, through the Lambda entry as API Gateway events: login guesses, registrations, client rates.

Counts live in the metadata database, so that two containers (two handler instances, each with its own
Django WSGI application and database connection) share them; the tests use a second handler in a second
thread, with its own connection, beside ``service_initialization.handler``, handlers in many threads at once,
and two local servers (two processes) on one database.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from apig_wsgi import make_lambda_handler
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import status

import service_initialization
from fma_django_connectors import services
from fma_django_connectors.access import throttling
from fma_django_connectors.models import ThrottleCount
from tests.events import make_context, make_v1_event, make_v2_event, response_body
from tests.servers import RunningServer

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "brakes-password"
LOGIN_RATE = 10


@pytest.fixture
def developer(django_user_model):
    return django_user_model.objects.create_user("dev", password=PASSWORD)


@pytest.fixture
def model(developer):
    return services.model_create(developer=developer, name="brakes", aggregator="avg_values_if_data")


def _event(method, path, *, body=None, headers=None, source_ip=None, build=make_v1_event):
    all_headers = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    event = build(method=method, path=path, headers=all_headers, body=None if body is None else json.dumps(body))
    if source_ip is not None:
        event["requestContext"]["identity"]["sourceIp"] = source_ip
    return event


def _basic(username, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class Container:
    """A second Lambda container: its own WSGI application, served in its own thread (own DB connection)."""

    def __init__(self):
        self.handler = make_lambda_handler(get_wsgi_application(), binary_support=True)

    def __call__(self, event):
        answers = []

        def serve():
            try:
                answers.append(self.handler(event, make_context()))
            finally:
                connection.close()

        worker = threading.Thread(target=serve)
        worker.start()
        worker.join()
        return answers[0]


def _main(event):
    return service_initialization.handler(event, make_context())


def _headers(response):
    if "multiValueHeaders" in response:
        return {name.lower(): values[-1] for name, values in response["multiValueHeaders"].items()}
    return {name.lower(): value for name, value in response["headers"].items()}


def _assert_throttled(response):
    assert response["statusCode"] == status.HTTP_429_TOO_MANY_REQUESTS
    body = json.loads(response_body(response))
    assert body["detail"].startswith("Request was throttled. Expected available in ")
    # Within the window and a share of the next: a full previous window weighs on it (docs/security.md).
    assert 1 <= int(_headers(response)["retry-after"]) <= 2 * 60


def test_two_containers_share_the_token_route_count(developer):
    other = Container()
    attempts = [
        _event("POST", "/api-token-auth/", body={"username": "dev", "password": f"guess-{n}"}) for n in range(11)
    ]
    for number, event in enumerate(attempts[:LOGIN_RATE]):
        serve = other if number % 2 else _main
        assert serve(event)["statusCode"] == status.HTTP_400_BAD_REQUEST

    # The 11th guess is refused by either container, the right password included.
    _assert_throttled(other(attempts[LOGIN_RATE]))
    right = _event("POST", "/api-token-auth/", body={"username": "dev", "password": PASSWORD})
    _assert_throttled(_main(right))


def test_basic_failures_are_counted_per_username_across_addresses(developer):
    for number in range(LOGIN_RATE):
        wrong = _event("GET", "/api/v1/models/", headers=_basic("dev", "wrong"), source_ip=f"203.0.113.{number}")
        assert _main(wrong)["statusCode"] == status.HTTP_401_UNAUTHORIZED

    right = _event("GET", "/api/v1/models/", headers=_basic("DEV", PASSWORD), source_ip="203.0.113.99")
    _assert_throttled(Container()(right))


def test_basic_failures_are_counted_per_address_across_usernames(developer):
    for number in range(LOGIN_RATE):
        wrong = _event("GET", "/api/v1/models/", headers=_basic(f"user{number}", "wrong"))
        assert _main(wrong)["statusCode"] == status.HTTP_401_UNAUTHORIZED
    _assert_throttled(_main(_event("GET", "/api/v1/models/", headers=_basic("dev", PASSWORD))))


def test_a_right_basic_password_does_not_count(developer):
    for _ in range(LOGIN_RATE + 2):
        response = _main(_event("GET", "/api/v1/models/", headers=_basic("dev", PASSWORD)))
        assert response["statusCode"] == status.HTTP_200_OK


def test_a_forged_forwarded_for_does_not_escape_the_count(developer):
    # API Gateway REST appends the real address to X-Forwarded-For; what comes first is the caller's to write.
    for number in range(LOGIN_RATE):
        forged = {**_basic(f"user{number}", "wrong"), "X-Forwarded-For": f"192.0.2.{number}"}
        assert _main(_event("GET", "/api/v1/models/", headers=forged))["statusCode"] == status.HTTP_401_UNAUTHORIZED
    forged = {**_basic("dev", PASSWORD), "X-Forwarded-For": "192.0.2.200"}
    _assert_throttled(_main(_event("GET", "/api/v1/models/", headers=forged)))


def test_anonymous_registration_is_limited_per_address(model):
    path = f"/api/v1/models/{model.pk}/register_client/"
    other = Container()
    for number in range(30):
        serve = other if number % 2 else _main
        assert serve(_event("POST", path, build=make_v2_event))["statusCode"] == status.HTTP_200_OK
    _assert_throttled(_main(_event("POST", path, build=make_v2_event)))
    # Another address still registers.
    assert _main(_event("POST", path, source_ip="203.0.113.50"))["statusCode"] == status.HTTP_200_OK


def test_each_client_has_its_own_rate(model, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client": "3/min"},
    }
    first, second = services.client_register(model=model), services.client_register(model=model)
    path = f"/api/v1/models/{model.pk}/get_latest_model/"
    for _ in range(3):
        assert _main(_event("GET", path, headers={"CLIENT-UUID": str(first.uuid)}))["statusCode"] == status.HTTP_200_OK
    _assert_throttled(Container()(_event("GET", path, headers={"CLIENT-UUID": str(first.uuid)})))
    assert _main(_event("GET", path, headers={"CLIENT-UUID": str(second.uuid)}))["statusCode"] == status.HTTP_200_OK


def test_a_rate_of_none_switches_its_brake_off(developer, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": None},
    }
    for number in range(LOGIN_RATE + 5):
        wrong = _event("GET", "/api/v1/models/", headers=_basic("dev", f"guess-{number}"))
        assert _main(wrong)["statusCode"] == status.HTTP_401_UNAUTHORIZED
    assert not ThrottleCount.objects.filter(key__startswith="throttle:login:").exists()


def _all_headers(response, name):
    if "multiValueHeaders" in response:
        values = next((values for key, values in response["multiValueHeaders"].items() if key.lower() == name), [])
    else:
        values = [value for key, value in response["headers"].items() if key.lower() == name]
    return [value.strip() for value in values]


def _form_login(path, username, password, *, source_ip=None):
    """A browser logging in on a form page: the page (its CSRF cookie and token), then the form's POST."""
    page = _main(_event("GET", path, source_ip=source_ip))
    assert page["statusCode"] == status.HTTP_200_OK
    cookie = next(value.split(";")[0] for value in _all_headers(page, "set-cookie") if value.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response_body(page)).group(1).decode()
    form = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "Origin": "https://testserver",
        "Referer": f"https://testserver{path}",
    }
    event = make_v1_event(method="POST", path=path, headers=headers, body=form)
    if source_ip is not None:
        event["requestContext"]["identity"]["sourceIp"] = source_ip
    return _main(event)


FORM_LOGINS = ["/dashboard/login/", "/admin/login/"]


class TestFormLogins:
    """The dashboard's and the admin's login forms share the password brake of Basic and the token route."""

    @pytest.mark.parametrize("path", FORM_LOGINS)
    def test_a_right_password_is_refused_once_basic_used_the_rate(self, developer, path):
        for number in range(LOGIN_RATE):
            wrong = _event("GET", "/api/v1/models/", headers=_basic("dev", "wrong"), source_ip=f"203.0.113.{number}")
            assert _main(wrong)["statusCode"] == status.HTTP_401_UNAUTHORIZED
        response = _form_login(path, "dev", PASSWORD, source_ip="203.0.113.99")
        _assert_throttled(response)
        assert not [value for value in _all_headers(response, "set-cookie") if value.startswith("sessionid=")]

    @pytest.mark.parametrize("path", FORM_LOGINS)
    def test_wrong_form_passwords_count_for_basic_and_the_token_route(self, developer, path):
        for number in range(LOGIN_RATE):
            assert _form_login(path, "dev", f"guess-{number}")["statusCode"] == status.HTTP_200_OK  # the form again
        _assert_throttled(_main(_event("GET", "/api/v1/models/", headers=_basic("dev", PASSWORD))))
        right = _event("POST", "/api-token-auth/", body={"username": "dev", "password": PASSWORD})
        _assert_throttled(_main(right))
        _assert_throttled(_form_login(path, "dev", PASSWORD))

    @pytest.mark.parametrize("path", FORM_LOGINS)
    def test_a_right_form_password_does_not_count(self, developer, path):
        developer.is_staff = True  # the admin takes staff only
        developer.save()
        for _ in range(LOGIN_RATE + 2):
            response = _form_login(path, "dev", PASSWORD)
            assert response["statusCode"] == status.HTTP_302_FOUND
            assert [value for value in _all_headers(response, "set-cookie") if value.startswith("sessionid=")]


CREDENTIALS_RATE = 30
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


class TestFailedCredentials:
    """A ``CLIENT-UUID`` that names no client, a wrong token and a malformed Basic header count per address."""

    FAILURES = {
        "unknown-uuid": {"CLIENT-UUID": UNKNOWN_UUID},
        "malformed-uuid": {"CLIENT-UUID": "not-a-uuid"},
        "wrong-token": {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"},
        "malformed-token": {"Authorization": "Token two words"},
        "malformed-basic": {"Authorization": "Basic !!!not-base64"},
    }

    @pytest.mark.parametrize("kind", list(FAILURES))
    def test_failures_are_braked_after_the_rate(self, model, kind):
        failure = _event("GET", "/api/v1/models/", headers=self.FAILURES[kind])
        other = Container()
        for number in range(CREDENTIALS_RATE):
            serve = other if number % 2 else _main
            assert serve(failure)["statusCode"] == status.HTTP_401_UNAUTHORIZED
        _assert_throttled(_main(failure))
        # Another address is not braked.
        elsewhere = _event("GET", "/api/v1/models/", headers=self.FAILURES[kind], source_ip="203.0.113.50")
        assert _main(elsewhere)["statusCode"] == status.HTTP_401_UNAUTHORIZED

    def test_every_kind_of_failure_counts_against_one_rate(self, model):
        kinds = list(self.FAILURES.values())
        for number in range(CREDENTIALS_RATE):
            failure = _event("GET", "/api/v1/models/", headers=kinds[number % len(kinds)])
            assert _main(failure)["statusCode"] == status.HTTP_401_UNAUTHORIZED
        for headers in kinds:
            _assert_throttled(_main(_event("GET", "/api/v1/models/", headers=headers)))

    def test_a_known_client_keeps_working(self, model):
        # Its uuid is 122 random bits, not a password a guesser could find by trying: the brake bounds failures.
        fed_client = services.client_register(model=model)
        for _ in range(CREDENTIALS_RATE + 1):
            _main(_event("GET", "/api/v1/models/", headers={"CLIENT-UUID": UNKNOWN_UUID}))
        path = f"/api/v1/models/{model.pk}/get_latest_model/"
        answer = _main(_event("GET", path, headers={"CLIENT-UUID": str(fed_client.uuid)}))
        assert answer["statusCode"] == status.HTTP_200_OK


class TestCost:
    """What the brakes cost a request: one statement per count (the shared cache is not involved)."""

    @pytest.fixture(autouse=True)
    def _no_cleanup_due(self, monkeypatch):
        monkeypatch.setattr(throttling, "_last_cleanup", time.time())

    @staticmethod
    def _throttle_statements(event):
        with CaptureQueriesContext(connection) as queries:
            response = _main(event)
        statements = [query["sql"] for query in queries.captured_queries]
        assert not [sql for sql in statements if "fma_cache" in sql]
        return response, statements, [sql for sql in statements if ThrottleCount._meta.db_table in sql]

    def test_a_client_request_costs_one_statement_and_no_transaction(self, model):
        fed_client = services.client_register(model=model)
        path = f"/api/v1/models/{model.pk}/get_latest_model/"
        response, all_statements, statements = self._throttle_statements(
            _event("GET", path, headers={"CLIENT-UUID": str(fed_client.uuid)})
        )
        assert response["statusCode"] == status.HTTP_200_OK
        assert len(statements) == 1, statements
        assert not [sql for sql in all_statements if sql.split()[0] in {"BEGIN", "SAVEPOINT"}]

    def test_a_basic_request_costs_four(self, model):
        # Its login guess against the IP and the username, taken back for the right password, and its user rate.
        response, _, statements = self._throttle_statements(
            _event("GET", f"/api/v1/models/{model.pk}/", headers=_basic("dev", PASSWORD))
        )
        assert response["statusCode"] == status.HTTP_200_OK
        assert len(statements) == 4, statements

    def test_a_token_route_attempt_costs_two(self, developer):
        event = _event("POST", "/api-token-auth/", body={"username": "dev", "password": PASSWORD})
        response, _, statements = self._throttle_statements(event)
        assert response["statusCode"] == status.HTTP_200_OK
        assert len(statements) == 2, statements

    def test_a_refusal_reads_the_counts_for_its_wait(self, developer):
        for number in range(LOGIN_RATE):
            _main(_event("POST", "/api-token-auth/", body={"username": "dev", "password": f"guess-{number}"}))
        response, _, statements = self._throttle_statements(
            _event("POST", "/api-token-auth/", body={"username": "dev", "password": "guess"})
        )
        _assert_throttled(response)
        # Count against the IP; refused by it, so nothing taken back; the counts read for Retry-After.
        assert len(statements) == 2, statements


class TestTokenRoute:
    def test_deeply_nested_json_is_a_400(self, developer):
        deep = "[" * 5000 + "]" * 5000
        event = make_v1_event(
            method="POST", path="/api-token-auth/", headers={"Content-Type": "application/json"}, body=deep
        )
        response = _main(event)
        assert response["statusCode"] == status.HTTP_400_BAD_REQUEST
        assert json.loads(response_body(response))["detail"].startswith("JSON parse error - depth limit exceeded")

    def test_a_json_list_is_a_400(self, developer):
        response = _main(_event("POST", "/api-token-auth/", body=[{"username": "dev"}]))
        assert response["statusCode"] == status.HTTP_400_BAD_REQUEST

    def test_the_token_is_not_cached(self, developer):
        response = _main(_event("POST", "/api-token-auth/", body={"username": "dev", "password": PASSWORD}))
        assert response["statusCode"] == status.HTTP_200_OK
        assert _headers(response)["cache-control"] == "no-store"


class TestHeaders:
    def test_api_answers_are_not_cached(self, model):
        response = _main(_event("GET", "/api/v1/models/", headers=_basic("dev", PASSWORD)))
        assert _headers(response)["cache-control"] == "no-store"

    def test_html_pages_carry_a_content_security_policy(self, db):
        response = _main(make_v1_event(path="/admin/login/"))
        assert response["statusCode"] == status.HTTP_200_OK
        policy = _headers(response)["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy

    @pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/models/", "/api-token-auth/", "/nowhere/"])
    @pytest.mark.parametrize("method", ["BREW", "TRACE"])
    def test_an_unknown_method_is_a_json_405(self, path, method, developer):
        response = _main(make_v1_event(method=method, path=path, headers=_basic("dev", PASSWORD)))
        assert response["statusCode"] == status.HTTP_405_METHOD_NOT_ALLOWED
        assert json.loads(response_body(response)) == {"detail": f'Method "{method}" not allowed.'}
        assert "GET" in _headers(response)["allow"]

    def test_a_method_a_route_does_not_take_is_a_json_405(self, developer):
        response = _main(make_v1_event(method="DELETE", path="/api-token-auth/"))
        assert response["statusCode"] == status.HTTP_405_METHOD_NOT_ALLOWED
        assert json.loads(response_body(response)) == {"detail": 'Method "DELETE" not allowed.'}


def _all_at_once(events):
    """Each event served by its own handler (its own WSGI application and connection), released together."""
    start = threading.Barrier(len(events))

    def serve(event):
        handler = make_lambda_handler(get_wsgi_application(), binary_support=True)
        try:
            start.wait()
            return handler(event, make_context())["statusCode"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(serve, events))


# The SQLite test database lives in memory, where concurrent writers fail at once ("database table is locked")
# instead of waiting: the local servers below run the same guesses on a SQLite file, as the service does.
@pytest.mark.requires_postgres
class TestParallelGuesses:
    """Guesses sent together, as an attacker would: no more are tried than the rate allows."""

    def test_token_route(self, developer):
        guesses = [
            _event("POST", "/api-token-auth/", body={"username": "dev", "password": f"guess-{n}"}) for n in range(30)
        ]
        answers = _all_at_once(guesses)
        assert answers.count(status.HTTP_400_BAD_REQUEST) == LOGIN_RATE
        assert answers.count(status.HTTP_429_TOO_MANY_REQUESTS) == len(guesses) - LOGIN_RATE

    def test_basic_passwords(self, developer):
        guesses = [
            _event("GET", "/api/v1/models/", headers=_basic("dev", f"guess-{n}"), source_ip=f"203.0.113.{n}")
            for n in range(30)
        ]
        answers = _all_at_once(guesses)
        assert answers.count(status.HTTP_401_UNAUTHORIZED) == LOGIN_RATE
        assert answers.count(status.HTTP_429_TOO_MANY_REQUESTS) == len(guesses) - LOGIN_RATE


def _token_guess(number):
    body = json.dumps({"username": "admin", "password": f"guess-{number}"})
    return "POST", "/api-token-auth/", body, {"Content-Type": "application/json"}, status.HTTP_400_BAD_REQUEST


def _basic_guess(number):
    return "GET", "/api/v1/models/", None, _basic("admin", f"guess-{number}"), status.HTTP_401_UNAUTHORIZED


@pytest.mark.integration
@pytest.mark.parametrize("make_guess", [_token_guess, _basic_guess], ids=["token-route", "basic"])
def test_parallel_guesses_at_two_local_servers_never_pass_the_rate(tmp_path, make_guess):
    """Two local servers (two processes, eight handler workers each) on one database, as two Lambda containers."""
    settings_dict = connection.settings_dict
    env = {"FMA_ADMIN_PASSWORD": PASSWORD}
    if connection.vendor == "postgresql":
        env["FMA_LOCAL_DATABASE_URL"] = (
            f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}@{settings_dict['HOST']}:"
            f"{settings_dict['PORT']}/{settings_dict['NAME']}"
        )
    # One after the other: the first one migrates the shared database.
    servers = [RunningServer(tmp_path, env=env, name="first").wait_ready()]
    guesses = [make_guess(number) for number in range(4 * LOGIN_RATE)]
    start = threading.Barrier(len(guesses))

    def send(number):
        method, path, body, headers, _ = guesses[number]
        start.wait()
        return servers[number % 2].request(method, path, body=body, headers=headers)[0]

    try:
        servers.append(RunningServer(tmp_path, env=env, name="second").wait_ready())
        with ThreadPoolExecutor(max_workers=len(guesses)) as pool:
            answers = list(pool.map(send, range(len(guesses))))
    finally:
        for server in servers:
            server.stop()
    tried = guesses[0][-1]
    assert answers.count(tried) == LOGIN_RATE, answers
    assert answers.count(status.HTTP_429_TOO_MANY_REQUESTS) == len(guesses) - LOGIN_RATE, answers
