"""``make run``'s server, started for real and spoken to over HTTP."""

import contextlib
import json
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

import django.contrib.admin
import pytest

import local_server
from tests.servers import SERVER_SCRIPT, START_TIMEOUT, RunningServer, server_environment

pytestmark = pytest.mark.integration

STATIC_ADMIN = Path(django.contrib.admin.__file__).parent / "static" / "admin"
EVENT_LINES = {
    None: "as an API Gateway HTTP API (payload 2.0) event, the kind the deployed service receives.",
    "1.0": "as an API Gateway REST API (payload 1.0) event (the deployed service receives HTTP API 2.0 events).",
}


@pytest.fixture(scope="module", params=[None, "1.0"], ids=["default-http-api-events", "rest-events"])
def server(request, tmp_path_factory):
    running = RunningServer(tmp_path_factory.mktemp("local-server"), payload_format=request.param).wait_ready()
    yield running
    running.stop()


@pytest.fixture
def new_server(tmp_path):
    """Start servers on demand (all stopped at the end); by default each on a fresh data folder."""
    started = []

    def start(data_dir=tmp_path / "data", **kwargs):
        started.append(RunningServer(data_dir, **kwargs))
        return started[-1].wait_ready()

    yield start
    for running in started:
        running.stop()


def _cookies(headers):
    cookies = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    return {name: morsel.value for name, morsel in cookies.items()}


def _token_request(server, password):
    return server.request(
        "POST",
        "/api-token-auth/",
        body=json.dumps({"username": "admin", "password": password}),
        headers={"Content-Type": "application/json"},
    )


def _admin_user_count(data_dir):
    with sqlite3.connect(data_dir / "db.sqlite3") as connection:
        return connection.execute("select count(*) from auth_user where username = 'admin'").fetchone()[0]


class TestServing:
    def test_banner_names_the_event_kind(self, server):
        assert EVENT_LINES[server.payload_format] in server.stdout

    def test_banner_names_the_entry_points_and_each_answers_a_browser(self, server):
        printed = dict(re.findall(r"^  (Dashboard|API docs|Admin) +(http://\S+)", server.stdout, re.MULTILINE))
        answers = {name: server.request("GET", url.removeprefix(server.url[:-1])) for name, url in printed.items()}

        assert printed == {
            "Dashboard": f"{server.url}dashboard/",
            "API docs": f"{server.url}api/docs/",
            "Admin": f"{server.url}admin/",
        }
        # The pages a browser opens: the docs at once, the dashboard and the admin after their login.
        assert answers["API docs"][0] == 200
        assert answers["Dashboard"][0] == 302
        assert answers["Dashboard"][1]["Location"].startswith("/dashboard/login/")
        assert answers["Admin"][0] == 302
        assert answers["Admin"][1]["Location"].startswith("/admin/login/")

    def test_root_sends_a_browser_to_the_dashboard(self, server):
        status, headers, _ = server.request("GET", "/", headers={"Accept": "text/html,*/*;q=0.8"})

        assert status == 302
        assert headers["Location"] == "/dashboard/"

    def test_root_names_the_entry_points_to_an_api_client(self, server):
        status, _, body = server.request("GET", "/", headers={"Accept": "application/json"})

        assert status == 200
        assert json.loads(body)["docs"] == f"{server.url}api/docs/"

    def test_request_round_trips_through_the_handler(self, server):
        status, headers, body = server.request("GET", "/api-token-auth/")

        assert status == 405
        assert headers["Content-Type"] == "application/json"
        assert headers["Allow"] == "POST, OPTIONS"
        assert json.loads(body) == {"detail": 'Method "GET" not allowed.'}

    def test_json_body(self, server):
        status, _, body = _token_request(server, server.admin_password)

        assert status == 200
        assert re.fullmatch(r"[0-9a-f]{40}", json.loads(body)["token"])

    def test_multipart_body_travels_base64_encoded(self, server):
        boundary = "fma-boundary"
        fields = {"username": "admin", "password": server.admin_password}
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()
        ]
        body = ("".join(parts) + f"--{boundary}--\r\n").encode()

        status, _, response = server.request(
            "POST",
            "/api-token-auth/",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

        assert status == 200
        assert json.loads(response) == json.loads(_token_request(server, server.admin_password)[2])

    def test_bad_json_is_a_400(self, server):
        status, _, body = server.request(
            "POST", "/api-token-auth/", body=b"{not json", headers={"Content-Type": "application/json"}
        )

        assert status == 400
        assert "JSON parse error" in json.loads(body)["detail"]

    def test_query_string(self, server):
        status, _, body = server.request("GET", "/admin/login/?next=/admin/a+b%2Bc/")

        assert status == 200
        assert b'<input type="hidden" name="next" value="/admin/a b+c/">' in body

    def test_admin_login_sets_cookies_and_opens_the_admin(self, server):
        status, headers, _ = server.request("GET", "/admin/login/")
        csrf_token = _cookies(headers)["csrftoken"]
        form = f"csrfmiddlewaretoken={csrf_token}&username=admin&password={server.admin_password}&next=/admin/"

        login_status, login_headers, _ = server.request(
            "POST",
            "/admin/login/",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_token}"},
        )
        session = _cookies(login_headers)["sessionid"]
        index_status, _, index = server.request("GET", "/admin/", headers={"Cookie": f"sessionid={session}"})

        assert status == 200
        assert login_status == 302
        assert login_headers["Location"] == "/admin/"
        assert len(login_headers.get_all("Set-Cookie")) == 2
        assert index_status == 200
        assert b"Site administration" in index

    @pytest.mark.parametrize(
        ("path", "content_type"),
        [("css/base.css", 'text/css; charset="utf-8"'), ("img/icon-yes.svg", "image/svg+xml")],
    )
    def test_admin_static_files(self, server, path, content_type):
        status, headers, body = server.request("GET", f"/static/admin/{path}")

        assert status == 200
        assert headers["Content-Type"] == content_type
        assert body == (STATIC_ADMIN / path).read_bytes()

    def test_head_has_no_body(self, server):
        status, headers, body = server.request("HEAD", "/static/admin/img/icon-yes.svg")

        assert status == 200
        assert int(headers["Content-Length"]) == len((STATIC_ADMIN / "img/icon-yes.svg").read_bytes())
        assert body == b""

    def test_access_log_line(self, server):
        server.request("GET", "/api-token-auth/?probe=access-log")

        deadline = time.monotonic() + 10
        while '"GET /api-token-auth/?probe=access-log HTTP/1.1" 405 40 ' not in server.stderr():
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.05)


def _raw_exchange(server, data):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        return connection.makefile("rb").read()


class TestHttpErrors:
    """What the server answers itself, before any handler: JSON like everything else, no version banner."""

    def test_server_header_names_no_versions(self, server):
        _, headers, _ = server.request("GET", "/api-token-auth/")

        assert headers["Server"] == "fma-local"

    @pytest.mark.parametrize(
        ("request_bytes", "status", "detail"),
        [
            (b"GARBAGE\r\n\r\n", 400, "Bad request syntax ('GARBAGE')"),
            (b"GET / HTTP/2.0\r\n\r\n", 505, "Invalid HTTP version (2.0)"),
            (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Line too long"),
        ],
        ids=["malformed-request-line", "unsupported-protocol", "header-too-long"],
    )
    def test_protocol_errors_are_json(self, server, request_bytes, status, detail):
        answer = _raw_exchange(server, request_bytes)
        head, _, body = answer.partition(b"\r\n\r\n")

        assert head.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"Content-Type: application/json" in head
        assert b"Python" not in head
        assert json.loads(body) == {"detail": detail}

    @pytest.mark.parametrize(
        ("host_lines", "detail"),
        [
            (
                b"Host: evil.example\r\n",
                "Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS.",
            ),
            (
                b"Host: [bad\r\n",
                "Invalid HTTP_HOST header: '[bad'. The domain name provided is not valid according to RFC 1034/1035.",
            ),
            (b"Host: 127.0.0.1\r\nHost: localhost\r\n", "More than one Host header: '127.0.0.1', 'localhost'."),
        ],
        ids=["not-allowed", "malformed", "repeated"],
    )
    def test_bad_host_is_a_400_without_a_traceback(self, server, host_lines, detail):
        answer = _raw_exchange(server, b"GET /api/v1/ HTTP/1.1\r\n" + host_lines + b"Connection: close\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")

        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"Content-Type: application/json" in head
        assert json.loads(body) == {"detail": detail}
        assert "Traceback" not in server.stderr()

    def test_conflicting_content_lengths_are_a_400(self, server):
        answer = _raw_exchange(
            server,
            f"POST /api-token-auth/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{}".encode(),
        )
        head, _, body = answer.partition(b"\r\n\r\n")

        assert head.startswith(b"HTTP/1.1 400 ")
        assert json.loads(body) == {"detail": "Conflicting Content-Length headers: '2', '40'."}
        assert "Traceback" not in server.stderr()

    def test_a_repeated_content_length_of_one_value_is_taken(self, server):
        body = json.dumps({"username": "admin", "password": server.admin_password}).encode()
        answer = _raw_exchange(
            server,
            f"POST /api-token-auth/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body,
        )

        assert answer.startswith(b"HTTP/1.1 200 ")

    def test_unknown_method_reaches_the_handler(self, server):
        status, headers, body = server.request("BREW", "/api-token-auth/")

        assert (status, headers["Content-Type"]) == (405, "application/json")
        assert json.loads(body) == {"detail": 'Method "BREW" not allowed.'}


class TestBodyLimits:
    def test_over_large_body_is_a_413(self, server):
        request = urllib.request.Request(
            f"{server.url}api/v1/model_updates/",
            data=b"0" * (local_server.MAX_BODY_BYTES + 1),
            headers={"Content-Type": "application/json"},
            method="POST",
        )

        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=30)

        assert raised.value.code == 413
        assert raised.value.headers["Content-Type"] == "application/json"
        assert json.loads(raised.value.read()) == {
            "detail": "Request body too large: the limit is 6291456 bytes (6 MB), as on AWS Lambda."
        }

    def test_binary_body_counts_as_its_base64_event(self, server):
        body = b"\x00" * (local_server.MAX_BODY_BYTES - 1024 * 1024)

        status, headers, answer = server.request(
            "POST", "/api/v1/model_updates/", body=body, headers={"Content-Type": "application/octet-stream"}
        )

        assert (status, headers["Content-Type"]) == (413, "application/json")
        assert json.loads(answer)["detail"].startswith("Request too large: as a Lambda event it is ")
        assert "over AWS Lambda's limit of 6291456 bytes (6 MB)" in json.loads(answer)["detail"]

    def test_413_before_the_body_is_sent(self, server):
        head = (
            "POST /api/v1/model_updates/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {20 * 1024 * 1024}\r\n"
            "Expect: 100-continue\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(head.encode())
            answer = connection.makefile("rb").read()

        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"100 Continue" not in answer
        assert answer.endswith(
            b'{"detail": "Request body too large: the limit is 6291456 bytes (6 MB), as on AWS Lambda."}'
        )

    def test_chunked_body_is_a_411(self, server):
        head = f"POST /api-token-auth/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(head.encode() + b"2\r\n{}\r\n0\r\n\r\n")
            answer = connection.makefile("rb").read()

        assert answer.startswith(b"HTTP/1.1 411 ")
        assert answer.endswith(b'{"detail": "Chunked request bodies are not supported: send a Content-Length."}')


class TestAdminUser:
    def test_generated_password_printed_kept_and_reused(self, new_server, tmp_path):
        first = new_server(tmp_path / "data")
        password = first.admin_password
        assert first.stop() == 0
        second = new_server(tmp_path / "data")

        password_file = tmp_path / "data" / "admin_password"
        assert f"Login      admin / {password}   (generated, kept in {password_file})" in first.stdout
        assert f"Login      admin / {password}   (kept in {password_file})" in second.stdout
        assert password_file.read_text().strip() == password
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert _admin_user_count(tmp_path / "data") == 1
        assert _token_request(second, password)[0] == 200

    def test_password_from_environment(self, new_server, tmp_path):
        running = new_server(tmp_path / "data", admin_password="s3cret-from-env")

        assert "Login      admin / s3cret-from-env   (from FMA_ADMIN_PASSWORD)" in running.stdout
        assert _token_request(running, "s3cret-from-env")[0] == 200
        assert not (tmp_path / "data" / "admin_password").exists()

    def test_environment_resets_a_kept_password_and_later_runs_do_not_guess(self, new_server, tmp_path):
        generated = new_server(tmp_path / "data")
        generated.stop()
        overridden = new_server(tmp_path / "data", admin_password="chosen-by-me")
        overridden.stop()

        later = new_server(tmp_path / "data")

        assert _token_request(later, generated.admin_password)[0] == 400
        assert _token_request(later, "chosen-by-me")[0] == 200
        assert "Login      admin / (unchanged)   (existing password kept; set FMA_ADMIN_PASSWORD" in later.stdout
        assert _admin_user_count(tmp_path / "data") == 1


class TestLifecycle:
    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
    def test_signal_stops_cleanly(self, new_server, signum):
        running = new_server()
        assert running.request("GET", "/api-token-auth/")[0] == 405

        returncode = running.stop(signum)

        assert returncode == 0
        assert running.stdout.rstrip().endswith("Stopped.")
        assert "Traceback" not in running.stderr()

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
    def test_signals_arriving_while_stopping_are_ignored(self, new_server, signum):
        """``kill -TERM -<pgid>`` on ``make run``: the group's SIGTERM, then make's forwarded one, during the stop."""
        running = new_server()
        sent = 0
        while running.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                running.process.send_signal(signum)
                sent += 1
            time.sleep(0.0002)

        assert sent > 1
        assert running.stop() == 0
        assert running.stdout.rstrip().endswith("Stopped.")
        assert "Traceback" not in running.stderr()

    def test_port_in_use(self, new_server, server, tmp_path):
        process = subprocess.run(
            [sys.executable, str(SERVER_SCRIPT), "--port", str(server.port)],
            env=server_environment(tmp_path / "other"),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )

        assert process.returncode == 1
        assert f"Cannot listen on 127.0.0.1:{server.port}: Address already in use. Try another PORT." in process.stderr


class TestPayloadFormatOption:
    def test_http_api_events_by_default(self, monkeypatch):
        monkeypatch.delenv("FMA_PAYLOAD_FORMAT", raising=False)

        assert local_server.parse_args([]).payload_format == "2.0"

    def test_rest_events_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("FMA_PAYLOAD_FORMAT", "1.0")

        assert local_server.parse_args([]).payload_format == "1.0"

    def test_option_wins_over_the_environment(self, monkeypatch):
        monkeypatch.setenv("FMA_PAYLOAD_FORMAT", "2.0")

        assert local_server.parse_args(["--payload-format", "1.0"]).payload_format == "1.0"

    def test_unknown_format_in_the_environment_is_refused(self, monkeypatch, capsys):
        monkeypatch.setenv("FMA_PAYLOAD_FORMAT", "3.0")

        with pytest.raises(SystemExit) as raised:
            local_server.parse_args([])

        assert raised.value.code == 2
        assert "FMA_PAYLOAD_FORMAT must be 1.0 or 2.0, not '3.0'" in capsys.readouterr().err


class TestSlowClients:
    """Stalled connections hold their own thread until the idle timeout, never a handler worker."""

    def _stalled_connections(self, server, count):
        connections = []
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            # A head promising a body that never comes.
            connection.sendall(b"POST /api/v1/models/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
            connections.append(connection)
        return connections

    def test_stalled_clients_do_not_keep_others_waiting(self, new_server):
        server = new_server(admin_password="slow-clients", env={"FMA_LOCAL_WORKERS": "2"})
        stalled = self._stalled_connections(server, 20)
        try:
            started = time.monotonic()
            status, _, body = _token_request(server, "slow-clients")
            waited = time.monotonic() - started
        finally:
            for connection in stalled:
                connection.close()

        assert status == 200, body
        # Far below the idle timeout (30 s) that would free a worker held by a stalled client.
        assert waited < 10

    def test_a_silent_connection_is_closed_after_the_idle_timeout(self, new_server):
        server = new_server(env={"FMA_LOCAL_IDLE_TIMEOUT": "1"})
        (connection,) = self._stalled_connections(server, 1)
        with connection:
            connection.settimeout(15)
            started = time.monotonic()
            received = connection.recv(1024)
            closed_after = time.monotonic() - started

        assert received == b""
        assert closed_after < 10


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """A server with short deadlines; the body's rate is counted after a start as long as the idle timeout."""
    running = RunningServer(
        tmp_path_factory.mktemp("deadlines"),
        env={"FMA_LOCAL_HEADER_TIMEOUT": "2", "FMA_LOCAL_IDLE_TIMEOUT": "2", "FMA_LOCAL_MIN_BODY_RATE": "100"},
    ).wait_ready()
    yield running
    running.stop()


class TestRequestDeadlines:
    """A client must send its request head within a total deadline and its body at a minimum average rate."""

    def _trickle(self, server, head, pieces, every):
        """Send ``head``, then one of ``pieces`` every ``every`` seconds until the server closes; what it sent."""
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=every)
        answer = b""
        with connection:
            connection.sendall(head)
            for piece in pieces:
                try:
                    data = connection.recv(65536)
                except TimeoutError:
                    data = None  # nothing yet: the server is still waiting for more
                if data is not None:
                    answer += data
                    if not data:
                        return answer
                    continue
                try:
                    connection.sendall(piece)
                except (BrokenPipeError, ConnectionResetError):
                    return answer
        raise AssertionError(f"the connection stayed open while the client trickled; answer so far: {answer!r}")

    def test_a_head_trickled_a_line_at_a_time_is_refused_with_a_408(self, strict_server):
        """Each line comes well within the idle timeout, but the head as a whole takes too long."""
        started = time.monotonic()
        answer = self._trickle(
            strict_server,
            b"GET /api-token-auth/ HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            (f"X-Trickle-{n}: {n}\r\n".encode() for n in range(40)),
            every=0.5,
        )

        assert time.monotonic() - started < 15
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert json.loads(body) == {"detail": "The request head took longer than 2 s to arrive."}

    def test_a_body_trickled_below_the_minimum_rate_is_cut_off(self, strict_server):
        """2.5 bytes/s, well within the idle timeout byte by byte, yet the body would take minutes."""
        head = (
            f"POST /api-token-auth/ HTTP/1.1\r\nHost: 127.0.0.1:{strict_server.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
        )
        started = time.monotonic()
        answer = self._trickle(strict_server, head.encode(), (b" " for _ in range(60)), every=0.4)

        assert time.monotonic() - started < 15
        assert answer == b""
        assert "Closed the connection from 127.0.0.1: the request body arrived slower than 100 bytes/s" in (
            strict_server.stderr()
        )

    def test_a_steady_request_is_served(self, strict_server):
        status, _, body = strict_server.request("GET", "/api-token-auth/")

        assert (status, json.loads(body)) == (405, {"detail": 'Method "GET" not allowed.'})


def _thread_count(process):
    return len(list(Path(f"/proc/{process.pid}/task").iterdir()))


def _started_requests(server, count):
    """``count`` connections whose request head is on its way."""
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(count)]
    for connection in connections:
        connection.sendall(b"GET /api-token-auth/ HTTP/1.1\r\n")
    return connections


def _held(server, count):
    """``count`` connections the server has taken, each holding its place (and a thread) until it is closed."""
    threads_before = _thread_count(server.process)
    connections = _started_requests(server, count)
    deadline = time.monotonic() + 10
    while _thread_count(server.process) < threads_before + count:
        assert time.monotonic() < deadline, "the server did not take the connections"
        time.sleep(0.05)
    return connections


class TestConnectionCap:
    CAP = 3

    def test_connections_beyond_the_cap_are_answered_503_and_take_no_thread(self, new_server):
        server = new_server(env={"FMA_LOCAL_MAX_CONNECTIONS": str(self.CAP)})
        held = _held(server, self.CAP)
        try:
            threads_while_full = _thread_count(server.process)
            refused = _started_requests(server, 20)
            answers = [connection.makefile("rb").read() for connection in refused]
            threads_after = _thread_count(server.process)
        finally:
            for connection in held + refused:
                connection.close()

        head, _, body = answers[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        assert b"Content-Type: application/json" in head
        assert b"Retry-After: 1" in head
        assert json.loads(body) == {
            "detail": "The server is busy: it serves 3 connections at once (FMA_LOCAL_MAX_CONNECTIONS). Try again."
        }
        assert len(set(answers)) == 1
        assert threads_after <= threads_while_full
        assert "Traceback" not in server.stderr()

    def test_a_closed_connection_frees_its_place(self, new_server):
        server = new_server(env={"FMA_LOCAL_MAX_CONNECTIONS": "1"})
        (held,) = _held(server, 1)
        assert server.request("GET", "/api-token-auth/")[0] == 503
        held.close()

        deadline = time.monotonic() + 10
        while (status := server.request("GET", "/api-token-auth/")[0]) == 503 and time.monotonic() < deadline:
            time.sleep(0.1)

        assert status == 405


class TestConnectionOptions:
    @pytest.mark.parametrize(
        ("name", "variable", "default"),
        [
            ("workers", "FMA_LOCAL_WORKERS", 4),
            ("idle_timeout", "FMA_LOCAL_IDLE_TIMEOUT", 30),
            ("header_timeout", "FMA_LOCAL_HEADER_TIMEOUT", 20),
            ("min_body_rate", "FMA_LOCAL_MIN_BODY_RATE", 500),
            ("max_connections", "FMA_LOCAL_MAX_CONNECTIONS", 100),
        ],
    )
    def test_default_environment_and_option(self, monkeypatch, name, variable, default):
        monkeypatch.delenv(variable, raising=False)
        assert getattr(local_server.parse_args([]), name) == default
        monkeypatch.setenv(variable, "3")
        assert getattr(local_server.parse_args([]), name) == 3
        option = "--" + name.replace("_", "-")
        assert getattr(local_server.parse_args([option, "7"]), name) == 7

    @pytest.mark.parametrize("value", ["0", "-1", "many"])
    @pytest.mark.parametrize("option", ["--workers", "--max-connections", "--min-body-rate"])
    def test_a_count_that_is_not_a_positive_number_is_refused(self, option, value, capsys):
        with pytest.raises(SystemExit) as raised:
            local_server.parse_args([option, value])

        assert raised.value.code == 2
        assert f"must be a whole number of at least 1, not {value!r}" in capsys.readouterr().err
