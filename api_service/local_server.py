"""The server behind ``make run``: each HTTP request becomes an API Gateway event for
``service_initialization.handler``, and the handler's answer becomes the HTTP response.

The event is an HTTP API event (payload format 2.0) by default, as the HTTP API of the deployed
stacks sends, or a REST API proxy event (payload format 1.0) with ``--payload-format 1.0`` /
``FMA_PAYLOAD_FORMAT=1.0``.

``sam local start-api`` would do the same but needs Docker, and Django's ``runserver`` would skip the
Lambda entry. Going through the production handler means the local service sorts events, adapts them
with apig-wsgi and picks the settings-selected handler exactly as the deployed one does; only the
event comes from here instead of API Gateway.

At start-up it migrates the database through the handler's migration event, makes sure a superuser
``admin`` exists and prints the URL and the admin login. Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.auth import get_user_model

import service_initialization  # sets Django up as the Lambda cold start does

# API Gateway refuses larger payloads with a 413 before the function runs.
MAX_BODY_BYTES = 10 * 1024 * 1024
ADMIN_USERNAME = "admin"
PASSWORD_FILE_NAME = "admin_password"
STAGE = "local"
DEFAULT_PORT = 8000
PAYLOAD_FORMATS = ("1.0", "2.0")
# What the HTTP API in front of the deployed function (template.yaml, terraform_deploy/) sends.
DEFAULT_PAYLOAD_FORMAT = "2.0"
# The banner's line naming the events the handler gets.
_EVENT_LINES = {
    "2.0": "as an API Gateway HTTP API (payload 2.0) event, the kind the deployed service receives.",
    "1.0": "as an API Gateway REST API (payload 1.0) event (the deployed service receives HTTP API 2.0 events).",
}

# Bodies of these media types travel as text in the event; any other body is base64-encoded, as API
# Gateway does for binary media types.
_TEXT_MEDIA_PREFIXES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
)
_TEXT_MEDIA_SUFFIXES = ("+json", "+xml")
# These describe the connection to the client, which is this server's business, not the handler's.
_CONNECTION_HEADERS = frozenset({"transfer-encoding", "connection", "keep-alive"})
# requestContext's time, as API Gateway writes it.
_REQUEST_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S +0000"
# How long an over-large body may keep arriving after its 413 before the connection is dropped.
_DISCARD_SECONDS = 2.0

logger = logging.getLogger("fma.local_server")


@dataclass(frozen=True)
class AdminLogin:
    """The admin's login as far as this server knows it; ``password`` is None when it was changed elsewhere."""

    username: str
    password: str | None
    note: str


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that code may read."""

    aws_request_id: str
    function_name: str = "fma-api-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:fma-api-local"
    log_group_name: str = "/aws/lambda/fma-api-local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 30)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def ensure_admin(*, data_dir: Path, env_password: str | None) -> AdminLogin:
    """Create the ``admin`` superuser once; later runs keep it and report the password they know.

    ``env_password`` (``FMA_ADMIN_PASSWORD``) wins: the admin's password is set to it. Otherwise a
    generated password is kept in ``data_dir`` (mode 0600) so that later runs can print it again.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    password_file = data_dir / PASSWORD_FILE_NAME
    if env_password:
        if user is None:
            user_model.objects.create_superuser(ADMIN_USERNAME, password=env_password)
        elif not user.check_password(env_password):
            user.set_password(env_password)
            user.save(update_fields=["password"])
        return AdminLogin(ADMIN_USERNAME, env_password, "from FMA_ADMIN_PASSWORD")
    if user is None:
        password = secrets.token_urlsafe(12)
        _write_private(password_file, password)
        user_model.objects.create_superuser(ADMIN_USERNAME, password=password)
        return AdminLogin(ADMIN_USERNAME, password, f"generated, kept in {password_file}")
    kept = password_file.read_text().strip() if password_file.exists() else None
    if kept and user.check_password(kept):
        return AdminLogin(ADMIN_USERNAME, kept, f"kept in {password_file}")
    return AdminLogin(
        ADMIN_USERNAME, None, "existing password kept; set FMA_ADMIN_PASSWORD to reset it to a value of yours"
    )


@dataclass(frozen=True)
class _Request:
    """One HTTP request, already in the terms API Gateway uses for both payload formats."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, list[str]]
    query: dict[str, list[str]]
    body: str | None
    is_base64: bool
    client_ip: str
    request_id: str
    time: datetime


def request_event(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    client_ip: str,
    server_port: int,
    request_id: str,
    payload_format: str = DEFAULT_PAYLOAD_FORMAT,
) -> dict[str, Any]:
    """The API Gateway event for one HTTP request: HTTP API (``2.0``) or REST (``1.0``, proxy on ``/{proxy+}``)."""
    path, _, raw_query = target.partition("?")
    # API Gateway adds the forwarding headers; apig-wsgi reads the client address and scheme from them.
    all_headers = [*headers, ("X-Forwarded-For", client_ip), ("X-Forwarded-Port", str(server_port))]
    all_headers.append(("X-Forwarded-Proto", "http"))
    multi_headers = _group(all_headers, fold_case=True)
    text = _is_text(_last(multi_headers, "Content-Type"), body)
    request = _Request(
        method=method,
        path=path,
        raw_query=raw_query,
        headers=multi_headers,
        # API Gateway hands query parameters over URL-decoded, "+" as a space.
        query=_group(parse_qsl(raw_query, keep_blank_values=True), fold_case=False),
        body=(body.decode() if text else base64.b64encode(body).decode("ascii")) if body else None,
        is_base64=bool(body) and not text,
        client_ip=client_ip,
        request_id=request_id,
        time=datetime.now(UTC),
    )
    return _rest_event(request) if payload_format == "1.0" else _http_api_event(request)


def _rest_event(request: _Request) -> dict[str, Any]:
    # A REST API sends null, not an empty map, where a request has no query string.
    return {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in request.headers.items()},
        "multiValueHeaders": request.headers,
        "queryStringParameters": {key: values[-1] for key, values in request.query.items()} or None,
        "multiValueQueryStringParameters": request.query or None,
        "pathParameters": {"proxy": request.path.lstrip("/")} if request.path.strip("/") else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": _last(request.headers, "Host"),
            "httpMethod": request.method,
            "identity": {"sourceIp": request.client_ip, "userAgent": _last(request.headers, "User-Agent")},
            "path": f"/{STAGE}{request.path}",
            "protocol": "HTTP/1.1",
            "requestId": request.request_id,
            "requestTime": request.time.strftime(_REQUEST_TIME_FORMAT),
            "requestTimeEpoch": int(request.time.timestamp() * 1000),
            "resourcePath": "/{proxy+}",
            "stage": STAGE,
        },
        "body": request.body,
        "isBase64Encoded": request.is_base64,
    }


def _http_api_event(request: _Request) -> dict[str, Any]:
    # An HTTP API lowercases header names, joins repeats with commas, moves cookies to their own list
    # and leaves out what a request does not have.
    headers = {name.lower(): ",".join(values) for name, values in request.headers.items() if name.lower() != "cookie"}
    cookies = [part.strip() for value in _all(request.headers, "Cookie") for part in value.split(";") if part.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host"),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client_ip,
                "userAgent": headers.get("user-agent"),
            },
            "requestId": request.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": request.time.strftime(_REQUEST_TIME_FORMAT),
            "timeEpoch": int(request.time.timestamp() * 1000),
        },
        "isBase64Encoded": request.is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if request.query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in request.query.items()}
    if request.body is not None:
        event["body"] = request.body
    return event


def response_parts(response: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
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


class LocalServer(ThreadingHTTPServer):
    """A threaded HTTP server that remembers which API Gateway payload format it emulates."""

    def __init__(self, address: tuple[str, int], *, payload_format: str) -> None:
        super().__init__(address, ProxyRequestHandler)
        self.payload_format = payload_format


class ProxyRequestHandler(BaseHTTPRequestHandler):
    """Serves each request through ``service_initialization.handler`` as API Gateway would."""

    server: LocalServer

    protocol_version = "HTTP/1.1"
    server_version = "fma-local"

    def do_GET(self) -> None:
        started = time.perf_counter()
        length = self._declared_length()
        if length is None:
            return
        if length > MAX_BODY_BYTES:
            self._reject_too_large(length, started=started)
            return
        request_id = str(uuid.uuid4())
        event = request_event(
            method=self.command,
            target=self.path,
            headers=self.headers.items(),
            body=self.rfile.read(length),
            client_ip=self.client_address[0],
            server_port=self.server.server_address[1],
            request_id=request_id,
            payload_format=self.server.payload_format,
        )
        try:
            status, headers, body = response_parts(
                service_initialization.handler(event, LocalLambdaContext(request_id))
            )
        except Exception:
            # A function that raises reaches the client as API Gateway's own 502.
            logger.exception("The handler raised for %s %s", self.command, self.path)
            status, headers, body = 502, [("Content-Type", "application/json")], b'{"message": "Internal server error"}'
        self._send(status, headers, body, started=started)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def handle_expect_100(self) -> bool:
        # A client waiting for "100 Continue" learns of the 413 before sending its body.
        length = self._declared_length()
        if length is None:
            return False
        if length > MAX_BODY_BYTES:
            self._reject_too_large(0, started=time.perf_counter())
            return False
        return super().handle_expect_100()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Each answer is logged once, by _send, with its size and duration.
        pass

    def log_message(self, format: str, *args: Any) -> None:
        logger.warning("%s %s", self.address_string(), format % args)

    def _declared_length(self) -> int | None:
        """The body length the client announced; None after answering a request whose length is unusable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_error(411, "Chunked request bodies are not supported: send a Content-Length.")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._send_error(400, f"Invalid Content-Length: {self.headers.get('Content-Length')!r}.")
            return None
        return length

    def _reject_too_large(self, unread: int, *, started: float) -> None:
        detail = f"Request body too large: the limit is {MAX_BODY_BYTES} bytes (10 MB), as on API Gateway."
        self._send_error(413, detail, started=started)
        self._discard(unread)

    def _discard(self, unread: int) -> None:
        # Read and drop what the client is still sending, in small pieces and for a short while: a client
        # that writes its whole body before reading would otherwise see a connection reset, not the 413.
        deadline = time.monotonic() + _DISCARD_SECONDS
        buffer = bytearray(64 * 1024)
        self.connection.settimeout(0.5)
        try:
            while unread > 0 and time.monotonic() < deadline:
                received = self.rfile.readinto(memoryview(buffer)[: min(len(buffer), unread)])
                if not received:
                    break
                unread -= received
        except OSError:
            pass

    def _send_error(self, status: int, detail: str, *, started: float | None = None) -> None:
        self.close_connection = True
        body = json.dumps({"detail": detail}).encode()
        headers = [("Content-Type", "application/json"), ("Connection", "close")]
        self._send(status, headers, body, started=started or time.perf_counter())

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, *, started: float) -> None:
        self.send_response(status)
        # A HEAD answer keeps the length its GET would have; any other carries the length of its body.
        keep_length = self.command == "HEAD" and any(name.lower() == "content-length" for name, _ in headers)
        for name, value in headers:
            if keep_length or name.lower() != "content-length":
                self.send_header(name, value)
        if not keep_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            '[%s] %s "%s" %d %d %.0fms',
            self.log_date_time_string(),
            self.client_address[0],
            self.requestline,
            status,
            len(body),
            elapsed_ms,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)), help="0 picks a free port"
    )
    parser.add_argument(
        "--payload-format",
        choices=PAYLOAD_FORMATS,
        default=os.environ.get("FMA_PAYLOAD_FORMAT", DEFAULT_PAYLOAD_FORMAT),
        help="events as from an HTTP API (2.0, as deployed) or a REST API (1.0); default: %(default)s",
    )
    args = parser.parse_args(argv)
    # argparse checks the choices of a value given on the command line, not of a default from the environment.
    if args.payload_format not in PAYLOAD_FORMATS:
        parser.error(f"FMA_PAYLOAD_FORMAT must be 1.0 or 2.0, not {args.payload_format!r}")
    return args


def migrate() -> None:
    """Bring the database up to date through the handler's migration event, as a deployment does."""
    response = service_initialization.handler({"detail": "update_metadata_db"}, LocalLambdaContext("migrate"))
    if response["statusCode"] != 200:
        raise RuntimeError(f"Migrating the database failed: {response}")


def banner(*, url: str, login: AdminLogin, data_dir: Path, payload_format: str) -> str:
    """What a developer needs to start: where the service is and how to log in to the admin."""
    password = login.password if login.password is not None else "(unchanged)"
    return "\n".join(
        [
            "FMA API service, local: every request goes through service_initialization.handler",
            _EVENT_LINES[payload_format],
            "",
            f"  API    {url}api/v1/",
            f"  Admin  {url}admin/",
            f"  Login  {login.username} / {password}   ({login.note})",
            "",
            f"Data in {data_dir}. Press Ctrl-C to stop.",
            "",
        ]
    )


def _stop(signum: int, frame: FrameType | None) -> None:
    # The first signal stops the server; later ones must not interrupt the stop. They come: ``kill -TERM
    # -<pgid>`` on ``make run`` reaches this process, then make forwards its own SIGTERM to it as well.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Both signals stop the server the same way, whatever the parent process did with SIGINT.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        migrate()
        data_dir = Path(settings.LOCAL_DATA_DIR)
        login = ensure_admin(data_dir=data_dir, env_password=os.environ.get("FMA_ADMIN_PASSWORD"))
        try:
            server = LocalServer((args.host, args.port), payload_format=args.payload_format)
        except OSError as error:
            print(f"Cannot listen on {args.host}:{args.port}: {error.strerror}. Try another PORT.", file=sys.stderr)
            return 1
        host, port = server.server_address[:2]
        url = f"http://{host}:{port}/"
        print(banner(url=url, login=login, data_dir=data_dir, payload_format=args.payload_format), flush=True)
        with server:
            server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    return 0


def _group(pairs: Iterable[tuple[str, str]], *, fold_case: bool) -> dict[str, list[str]]:
    """Values by name, in arrival order; with ``fold_case`` a name keeps its first spelling."""
    grouped: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower() if fold_case else name, name)
        grouped.setdefault(key, []).append(value)
    return grouped


def _all(multi_headers: dict[str, list[str]], name: str) -> list[str]:
    return next((values for key, values in multi_headers.items() if key.lower() == name.lower()), [])


def _last(multi_headers: dict[str, list[str]], name: str) -> str | None:
    values = _all(multi_headers, name)
    return values[-1] if values else None


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


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    path.chmod(0o600)  # in case the file existed with looser permissions


if __name__ == "__main__":
    sys.exit(main())
