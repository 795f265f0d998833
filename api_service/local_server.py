"""The server behind ``make run``: each HTTP request becomes an API Gateway event for
``service_initialization.handler``, and the handler's answer becomes the HTTP response.

The event is an HTTP API event (payload format 2.0) by default, as the HTTP API of the deployed
stacks sends, or a REST API proxy event (payload format 1.0) with ``--payload-format 1.0`` /
``FMA_PAYLOAD_FORMAT=1.0``. ``fma_django_connectors.gateway.gateway_events`` builds them.

``sam local start-api`` would do the same but needs Docker, and Django's ``runserver`` would skip the
Lambda entry. Going through the production handler means the local service sorts events, adapts them
with apig-wsgi and picks the settings-selected handler exactly as the deployed one does; only the
event comes from here instead of API Gateway.

HTTP itself is werkzeug's WSGI server (threaded) with the manners of ``local_http``: deadlines for a
request's head and body, a cap on concurrent connections, JSON errors. :class:`GatewayApp` is the small WSGI
application that makes the events; it answers an ambiguous head (a bad or repeated ``Host``, conflicting
``Content-Length``) with a 400 itself. Requests and answers of the handler are limited to Lambda's
6 MB, so the local service answers as the deployed one does. Signed transfer URLs
(``fma_django_connectors.storage.transfers``) stand in for S3's presigned ones: they are served here, outside
the handler and its limit, streaming bodies to and from storage.

At start-up it migrates the database through the handler's migration event, makes sure a superuser
``admin`` exists and prints the URL and the admin login. Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from werkzeug.serving import BaseWSGIServer
from werkzeug.wsgi import FileWrapper

import service_initialization  # sets Django up as the Lambda cold start does
from fma_core.connectors.factory import connector_from_settings
from fma_django_connectors import services
from fma_django_connectors.aggregation import triggers
from fma_django_connectors.conf import fma_settings
from fma_django_connectors.gateway.gateway_events import (
    GatewayRequest,
    LambdaContext,
    forwarding_headers,
    http_api_event,
    response_parts,
    rest_event,
)
from fma_django_connectors.storage import transfers
from local_http import (
    HEADER_TIMEOUT_SECONDS,
    IDLE_TIMEOUT_SECONDS,
    JSON_TYPE,
    MAX_CONNECTIONS,
    MIN_BODY_RATE,
    RAW_HEADERS,
    listen,
    redacted,
    status_line,
)

# Lambda refuses a synchronous invocation whose request (or response) payload exceeds 6 MB.
MAX_BODY_BYTES = 6 * 1024 * 1024
ADMIN_USERNAME = "admin"
PASSWORD_FILE_NAME = "admin_password"
DEFAULT_PORT = 8000
PAYLOAD_FORMATS = ("1.0", "2.0")
# What the HTTP API in front of the deployed function (template.yaml, terraform_deploy/) sends.
DEFAULT_PAYLOAD_FORMAT = "2.0"
# Handler invocations that run at once, like a Lambda function's concurrency. Each worker thread keeps its
# database connection. The handler is Python under one GIL, so more workers add no throughput; on SQLite,
# which takes one writer at a time, 8 workers doubled the push p99 of 4 (bench/README.md, "Load").
DEFAULT_WORKERS = 4
# The banner's line naming the events the handler gets.
_EVENT_LINES = {
    "2.0": "as an API Gateway HTTP API (payload 2.0) event, the kind the deployed service receives.",
    "1.0": "as an API Gateway REST API (payload 1.0) event (the deployed service receives HTTP API 2.0 events).",
}

logger = logging.getLogger("fma.local_server")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class AdminLogin:
    """The admin's login as far as this server knows it; ``password`` is None when it was changed elsewhere."""

    username: str
    password: str | None
    note: str


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


class Refusal(Exception):
    """A request this server answers itself, with ``status`` and a JSON ``{"detail": ...}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    length: int


class GatewayApp:
    """The WSGI application: signed transfers are served here, every other request by the Lambda handler."""

    def __init__(self, *, payload_format: str = DEFAULT_PAYLOAD_FORMAT, workers: int = DEFAULT_WORKERS) -> None:
        self.payload_format = payload_format
        # Connection threads read and write sockets; only a request read whole reaches a handler worker, as API
        # Gateway buffers a request before it invokes the function. A slow or stalled client therefore holds
        # its own thread, never a worker or a database connection, and connections to the database stay
        # bounded by ``workers`` (plus the aggregation threads) however many clients connect.
        self.handler_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="handler")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        try:
            answer = self._answer(environ)
        except Refusal as refusal:
            answer = _json_answer(refusal.status, {"detail": refusal.detail})
        except (ConnectionError, TimeoutError):
            raise  # the client is gone or silent: werkzeug drops the connection
        except Exception:
            logger.exception("Serving %s %s failed", method, redacted(environ.get("REQUEST_URI", "")))
            answer = _json_answer(500, {"detail": "The local server failed to serve this request; see its log."})
        if method == "HEAD":
            # A HEAD answer keeps the length its GET would have, and no body.
            answer = _Answer(answer.status, answer.headers, [], answer.length)
        start_response(status_line(answer.status), answer.headers)
        logger.info(
            '[%s] %s "%s %s %s" %d %d %.0fms',
            datetime.now().strftime("%d/%b/%Y %H:%M:%S"),
            environ.get("REMOTE_ADDR"),
            method,
            redacted(environ.get("REQUEST_URI", "")),
            environ.get("SERVER_PROTOCOL"),
            answer.status,
            answer.length,
            (time.perf_counter() - started) * 1000,
        )
        return answer.body

    def refusal(self, method: str, target: str, headers: Message) -> Refusal | None:
        """Why the request with this head cannot be served, known before its body is read; None if it can be."""
        try:
            self._check_head(method, target, headers)
        except Refusal as refused:
            return refused
        return None

    def _check_head(self, method: str, target: str, headers: Message) -> tuple[int, transfers.LocalGrant | None]:
        """The body's length and, for a transfer URL, its grant; Refusal if the head alone rules the request out."""
        _check_host(headers)
        length = _declared_length(headers)
        token = _transfer_token(target)
        if token is None:
            if length > MAX_BODY_BYTES:
                raise Refusal(
                    413, f"Request body too large: the limit is {MAX_BODY_BYTES} bytes (6 MB), as on AWS Lambda."
                )
            return length, None
        try:
            grant = transfers.read_grant(token, method=method)
            if grant.method == "PUT":
                transfers.check_length(grant, length)
        except transfers.TransferRefused as refused:
            raise Refusal(refused.status, refused.detail) from None
        return length, grant

    def _answer(self, environ: dict[str, Any]) -> _Answer:
        target = environ["REQUEST_URI"]
        length, grant = self._check_head(environ["REQUEST_METHOD"], target, environ[RAW_HEADERS])
        if grant is not None:
            return self._transfer(environ, grant, length)
        return self._invoke(environ, target, length)

    def _invoke(self, environ: dict[str, Any], target: str, length: int) -> _Answer:
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            raise Refusal(400, f"The body ended after {len(body)} of {length} bytes.")
        path, _, raw_query = target.partition("?")
        request_id = str(uuid.uuid4())
        request = GatewayRequest(
            method=environ["REQUEST_METHOD"],
            path=path,
            raw_query=raw_query,
            headers=(
                *environ[RAW_HEADERS].items(),
                *forwarding_headers(
                    client_ip=environ["REMOTE_ADDR"],
                    port=int(environ["SERVER_PORT"]),
                    scheme=environ["wsgi.url_scheme"],
                ),
            ),
            body=body or None,
            source_ip=environ["REMOTE_ADDR"],
            request_id=request_id,
        )
        event = rest_event(request) if self.payload_format == "1.0" else http_api_event(request)
        # Lambda's limit is on the invocation payload, the event with its base64-encoded body, not on the body.
        event_size = len(json.dumps(event))
        if event_size > MAX_BODY_BYTES:
            raise Refusal(
                413,
                f"Request too large: as a Lambda event it is {event_size} bytes, over AWS Lambda's limit of "
                f"{MAX_BODY_BYTES} bytes (6 MB); binary bodies travel base64-encoded, a third larger.",
            )
        try:
            response = self.handler_pool.submit(
                service_initialization.handler, event, LambdaContext(request_id)
            ).result()
            status, headers, content = response_parts(response)
        except Exception:
            # A function that raises reaches the client as API Gateway's own 502.
            logger.exception("The handler raised for %s %s", request.method, target)
            return _json_answer(502, {"message": "Internal server error"})
        response_size = len(json.dumps(response))
        if response_size > MAX_BODY_BYTES:
            # Lambda refuses to return such a payload; API Gateway answers its 502 then.
            logger.error(
                "The response to %s %s is %d bytes, over Lambda's limit", request.method, target, response_size
            )
            return _json_answer(502, {"message": "Internal server error"})
        declared = next((int(value) for name, value in headers if name.lower() == "content-length"), None)
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        # The length of the body sent, except for HEAD, whose handler answer may give its GET's length.
        length_sent = declared if environ["REQUEST_METHOD"] == "HEAD" and declared is not None else len(content)
        return _Answer(status, [*headers, ("Content-Length", str(length_sent))], [content], length_sent)

    def _transfer(self, environ: dict[str, Any], grant: transfers.LocalGrant, length: int) -> _Answer:
        try:
            if grant.method == "PUT":
                transfers.receive(grant, environ["wsgi.input"], length)
                return _json_answer(200, {"name": grant.name, "size": length})
            file, headers = transfers.open_download(grant)
        except transfers.TransferRefused as refused:
            raise Refusal(refused.status, refused.detail) from None
        return _Answer(200, list(headers.items()), FileWrapper(file, 64 * 1024), int(headers["Content-Length"]))


def serve(
    host: str,
    port: int,
    *,
    payload_format: str,
    workers: int = DEFAULT_WORKERS,
    idle_timeout: int = IDLE_TIMEOUT_SECONDS,
    header_timeout: int = HEADER_TIMEOUT_SECONDS,
    min_body_rate: int = MIN_BODY_RATE,
    max_connections: int = MAX_CONNECTIONS,
) -> BaseWSGIServer:
    """A threaded server for :class:`GatewayApp` on ``host:port`` (0 picks a free port); OSError if it cannot listen."""
    return listen(
        host,
        port,
        GatewayApp(payload_format=payload_format, workers=workers),
        idle_timeout=idle_timeout,
        header_timeout=header_timeout,
        min_body_rate=min_body_rate,
        max_connections=max_connections,
    )


# Options taking a whole number of at least 1: option, environment variable, default, help.
_COUNT_OPTIONS = (
    (
        "--workers",
        "FMA_LOCAL_WORKERS",
        DEFAULT_WORKERS,
        "handler invocations at once, each with its database connection",
    ),
    ("--idle-timeout", "FMA_LOCAL_IDLE_TIMEOUT", IDLE_TIMEOUT_SECONDS, "seconds a connection may stay silent"),
    (
        "--header-timeout",
        "FMA_LOCAL_HEADER_TIMEOUT",
        HEADER_TIMEOUT_SECONDS,
        "seconds a request's head may take from its first byte to its end",
    ),
    (
        "--min-body-rate",
        "FMA_LOCAL_MIN_BODY_RATE",
        MIN_BODY_RATE,
        "bytes per second a request body must average after a start as long as the idle timeout",
    ),
    ("--max-connections", "FMA_LOCAL_MAX_CONNECTIONS", MAX_CONNECTIONS, "connections served at once; more get a 503"),
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
    for option, variable, default, text in _COUNT_OPTIONS:
        parser.add_argument(
            option,
            type=_positive_int,
            default=os.environ.get(variable, default),
            help=f"{text} (default: %(default)s)",
        )
    args = parser.parse_args(argv)
    # argparse checks the choices of a value given on the command line, not of a default from the environment.
    if args.payload_format not in PAYLOAD_FORMATS:
        parser.error(f"FMA_PAYLOAD_FORMAT must be 1.0 or 2.0, not {args.payload_format!r}")
    return args


def migrate() -> None:
    """Bring the database up to date through the handler's migration event, as a deployment does."""
    response = service_initialization.handler({"detail": "update_metadata_db"}, LambdaContext("migrate"))
    if response["statusCode"] != 200:
        raise RuntimeError(f"Migrating the database failed: {response}")


def banner(*, url: str, login: AdminLogin, data_dir: Path, payload_format: str) -> str:
    """What a developer needs to start: where the service, its docs and its pages are, and the admin's login."""
    password = login.password if login.password is not None else "(unchanged)"
    return "\n".join(
        [
            "FMA API service, local: every request goes through service_initialization.handler",
            _EVENT_LINES[payload_format],
            "",
            f"  Dashboard  {url}dashboard/",
            f"  API docs   {url}api/docs/   (OpenAPI: {url}api/schema/)",
            # A browser gets a 401 there: the API wants a credential (token, Basic, CLIENT-UUID); the docs show how.
            f"  API        {url}api/v1/   (for clients: token, Basic or CLIENT-UUID)",
            f"  Admin      {url}admin/",
            f"  Login      {login.username} / {password}   ({login.note})",
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
            server = serve(
                args.host,
                args.port,
                payload_format=args.payload_format,
                workers=args.workers,
                idle_timeout=args.idle_timeout,
                header_timeout=args.header_timeout,
                min_body_rate=args.min_body_rate,
                max_connections=args.max_connections,
            )
        except OSError as error:
            # socket.create_server adds the address to strerror; the message names it already.
            reason = os.strerror(error.errno) if error.errno else str(error)
            print(f"Cannot listen on {args.host}:{args.port}: {reason}. Try another PORT.", file=sys.stderr)
            return 1
        if fma_settings.FMA_AGGREGATION_TRIGGER == "local":
            # Picks up what a previous run of this server left: pending updates, claims of a killed aggregation (the
            # sweeper's runs take them back with their result files), and result files the claims cannot name
            # (written under older names), and update files a killed request wrote (listing a local folder is cheap).
            services.orphans_delete(claim_lease=connector_from_settings().claim_lease)
            triggers.start_local_sweeper(fma_settings.FMA_LOCAL_SWEEP_SECONDS)
        host, port = server.server_address[:2]
        url = f"http://{host}:{port}/"
        print(banner(url=url, login=login, data_dir=data_dir, payload_format=args.payload_format), flush=True)
        # werkzeug's serve_forever returns on KeyboardInterrupt, after closing the socket.
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    print("Stopped.", flush=True)
    return 0


def _positive_int(text: str) -> int:
    if not str(text).isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def _check_host(headers: Message) -> None:
    """Refuse a repeated Host or one Django would refuse, before the handler sees it.

    Django refuses such a host too, but reports it through the ``django.security`` logger with a traceback;
    the check is Django's own (``HttpRequest.get_host`` against ``ALLOWED_HOSTS``), its message the answer.
    """
    hosts = headers.get_all("Host") or []
    if len(hosts) > 1:
        raise Refusal(400, f"More than one Host header: {', '.join(map(repr, hosts))}.")
    if hosts:
        request = HttpRequest()
        request.META["HTTP_HOST"] = hosts[0]
        try:
            request.get_host()
        except DisallowedHost as refused:
            raise Refusal(400, str(refused)) from None


def _declared_length(headers: Message) -> int:
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        raise Refusal(411, "Chunked request bodies are not supported: send a Content-Length.")
    # RFC 9112, section 6.3: differing lengths make the body's end ambiguous; repeats of one value are harmless.
    lengths = headers.get_all("Content-Length") or ["0"]
    if len(set(lengths)) > 1:
        raise Refusal(400, f"Conflicting Content-Length headers: {', '.join(map(repr, lengths))}.")
    raw = lengths[0]
    if not raw.isascii() or not raw.isdigit():
        raise Refusal(400, f"Invalid Content-Length: {raw!r}.")
    return int(raw)


def _transfer_token(target: str) -> str | None:
    path = target.partition("?")[0]
    return path.removeprefix(transfers.LOCAL_TRANSFER_PATH) if path.startswith(transfers.LOCAL_TRANSFER_PATH) else None


def _json_answer(status: int, payload: dict[str, Any]) -> _Answer:
    body = json.dumps(payload).encode()
    return _Answer(status, [JSON_TYPE, ("Content-Length", str(len(body)))], [body], len(body))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    path.chmod(0o600)  # in case the file existed with looser permissions


if __name__ == "__main__":
    sys.exit(main())
