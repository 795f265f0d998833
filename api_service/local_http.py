"""HTTP for the local server: werkzeug's threaded WSGI server with the manners of one facing untrusted clients.

- Reads are paced as Apache's ``mod_reqtimeout`` paces them: an idle timeout per read, a total deadline for a
  request's head (then a 408) and a minimum average rate for its body (then the connection is closed), so a
  client trickling a byte now and then cannot hold a thread for ever.
- At most ``max_connections`` connections are served at once, a thread each; another is answered 503 on the
  spot, without a thread.
- Errors of HTTP itself are JSON, the ``Server`` header names no versions, and the log never shows a local
  transfer URL's token, a bearer credential until it expires.

The application answers the requests; :func:`listen` serves one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import threading
import time
from http import HTTPStatus
from typing import Any, Protocol

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler, select_address_family

from fma_django_connectors.storage.transfers import LOCAL_TRANSFER_PATH

# A connection that sends nothing for this long is closed, so idle clients cannot hold threads forever.
IDLE_TIMEOUT_SECONDS = 30
# A request's head must arrive whole within this many seconds of its first byte, and its body at this many
# bytes per second on average, counted after a start as long as the idle timeout: a client trickling a byte
# now and then stays within the idle timeout forever otherwise. The defaults are those of Apache's
# mod_reqtimeout (header=20, MinRate=500).
HEADER_TIMEOUT_SECONDS = 20
MIN_BODY_RATE = 500
# Connections open at once; each holds a thread. Beyond it a connection is answered 503 and closed at once.
# Far above what a developer, a browser and a few dozen clients open (bench/load.py's 50 clients fit).
MAX_CONNECTIONS = 100
SERVER_NAME = "fma-local"
# The request's headers (an email.message.Message) as the client sent them: spelling, order and repeats,
# which WSGI's environ folds.
RAW_HEADERS = "fma.raw_headers"
JSON_TYPE = ("Content-Type", "application/json")
# A local transfer URL's token is a bearer credential until it expires (15 to 60 minutes): logs show this instead.
_TRANSFER_TOKEN = re.compile(re.escape(LOCAL_TRANSFER_PATH) + r"[^\s'\"]+")
_REDACTED_TRANSFER = LOCAL_TRANSFER_PATH + "[redacted]"

logger = logging.getLogger("fma.local_server")


class Refused(Protocol):
    """Why a request is refused: its status and the JSON ``detail`` of the answer."""

    status: int
    detail: str


class HeadChecking(Protocol):
    """An application that may refuse a request from its head alone, before the client sends the body."""

    def refusal(self, method: str, target: str, headers: Any) -> Refused | None: ...


class RequestTooSlow(TimeoutError):
    """A client that keeps sending, but too slowly: its head took too long, or its body came below the rate."""


class _PacedSocketReader(io.RawIOBase):
    """A connection's reading side: each read waits at most the idle timeout and no later than the phase's deadline.

    Sockets, socketserver and werkzeug know only a timeout per read, which a client sending a byte now and then
    never reaches; Apache's ``mod_reqtimeout`` adds a deadline for the whole head and a minimum rate for the
    body, and so does this reader, set before each ``recv``. The head's deadline runs from its first byte
    (waiting for a request is the idle timeout's business); the body's from the end of the head, as
    ``idle timeout + received / rate``.
    A passed deadline raises :class:`RequestTooSlow`, a ``TimeoutError``, which the server treats as a client
    that went silent.
    """

    def __init__(self, sock: socket.socket, *, idle_timeout: float, header_timeout: float, min_body_rate: int):
        super().__init__()
        self._sock = sock
        self._idle_timeout = idle_timeout
        self._header_timeout = header_timeout
        self._min_body_rate = min_body_rate
        self._in_body = False
        self._started: float | None = None  # when the phase's clock started; a head's starts at its first byte
        self._received = 0
        self.head_overdue: RequestTooSlow | None = None

    def expect_head(self) -> None:
        self._in_body, self._started, self.head_overdue = False, None, None

    def expect_body(self) -> None:
        self._in_body, self._started, self._received = True, time.monotonic(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        now = time.monotonic()
        wait = min(self._idle_timeout, self._deadline() - now) if self._started is not None else self._idle_timeout
        if wait <= 0:
            raise self._overdue()
        self._sock.settimeout(wait)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            if self._started is not None and time.monotonic() >= self._deadline():
                raise self._overdue() from None
            raise
        finally:
            # Writes share the socket's timeout: they keep the idle one.
            self._sock.settimeout(self._idle_timeout)
        self._received += count
        if self._started is None and count:
            self._started = now
        return count

    def _deadline(self) -> float:
        assert self._started is not None
        if self._in_body:
            return self._started + self._idle_timeout + self._received / self._min_body_rate
        return self._started + self._header_timeout

    def _overdue(self) -> RequestTooSlow:
        if self._in_body:
            return RequestTooSlow(f"the request body arrived slower than {self._min_body_rate} bytes/s")
        self.head_overdue = RequestTooSlow(f"The request head took longer than {self._header_timeout} s to arrive.")
        return self.head_overdue


class RequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with this server's manners: JSON errors, paced reads, no version banner."""

    server: BaseWSGIServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    header_timeout = HEADER_TIMEOUT_SECONDS
    min_body_rate = MIN_BODY_RATE

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain file of the socket, replaced by a paced one
        self._reader = _PacedSocketReader(
            self.connection,
            idle_timeout=self.timeout,
            header_timeout=self.header_timeout,
            min_body_rate=self.min_body_rate,
        )
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # What parse_request sets first, read by send_error when the request line itself never came whole.
        self.command, self.request_version = None, self.default_request_version  # type: ignore[assignment]
        self._reader.expect_head()
        # http.server closes a connection whose read timed out, without an answer; a head that took too long
        # gets its 408 here.
        super().handle_one_request()
        if self._reader.head_overdue is not None:
            self.send_error(408, str(self._reader.head_overdue))

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self._reader.expect_body()
        return parsed

    def connection_dropped(self, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        # werkzeug would go on to read the next request from what is left of this one.
        self.close_connection = True
        if isinstance(error, RequestTooSlow):
            logger.warning("Closed the connection from %s: %s", self.address_string(), error)

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_HEADERS] = self.headers
        return environ

    def handle_expect_100(self) -> bool:
        # A client waiting for "100 Continue" learns of a refusal before sending its body; werkzeug sends the
        # "100 Continue" itself otherwise.
        app: HeadChecking = self.server.app  # type: ignore[assignment]
        refused = app.refusal(self.command, self.path, self.headers)
        if refused is not None:
            self.send_error(refused.status, refused.detail)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of HTTP itself (bad request line, unsupported version, over-long headers) as JSON too."""
        reason = status_line(code).partition(" ")[2]
        detail = message or reason
        self.log_error("code %d, message %s", code, detail)
        self.close_connection = True
        # http.server leaves an unparsable request at HTTP/0.9, whose answers carry no status line or headers.
        self.request_version = max(self.request_version, "HTTP/1.0")
        body = json.dumps({"detail": detail}).encode()
        self.send_response(code, reason)
        self.send_header(*JSON_TYPE)
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def version_string(self) -> str:
        # The default names werkzeug's and Python's versions.
        return SERVER_NAME

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The application logs each answer once, with its size and duration.
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        # werkzeug's messages and http.server's (through werkzeug's) quote the request line, which may hold a
        # transfer URL.
        logger.warning("%s %s", self.address_string(), redacted(message % args))


class CappedWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server, serving at most ``max_connections`` connections (a thread each) at once.

    socketserver starts a thread for every connection it accepts. Beyond the cap a connection gets a fixed
    503 on the accepting thread and is closed, so a flood of connections costs no threads.
    """

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self._places = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._places.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._places.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._places.release()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        logger.warning("Refused a connection from %s: %d are open", client_address[0], self.max_connections)
        detail = (
            f"The server is busy: it serves {self.max_connections} connections at once "
            "(FMA_LOCAL_MAX_CONNECTIONS). Try again."
        )
        # Written by hand: http.server builds answers only inside a request handler, which needs a thread.
        body = json.dumps({"detail": detail}).encode()
        head = (
            f"HTTP/1.1 503 Service Unavailable\r\nServer: {SERVER_NAME}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        # Never block the accepting thread: a new connection's send buffer takes these few hundred bytes whole.
        request.setblocking(False)
        with contextlib.suppress(OSError):
            request.sendall(head.encode() + body)
        self.shutdown_request(request)


def listen(
    host: str,
    port: int,
    app: HeadChecking,
    *,
    idle_timeout: int = IDLE_TIMEOUT_SECONDS,
    header_timeout: int = HEADER_TIMEOUT_SECONDS,
    min_body_rate: int = MIN_BODY_RATE,
    max_connections: int = MAX_CONNECTIONS,
) -> BaseWSGIServer:
    """A server for ``app`` on ``host:port`` (0 picks a free port); OSError if it cannot listen."""
    listening = socket.create_server((host, port), family=select_address_family(host, port))
    request_handler = type(
        "RequestHandler",
        (RequestHandler,),
        {"timeout": idle_timeout, "header_timeout": header_timeout, "min_body_rate": min_body_rate},
    )
    try:
        return CappedWSGIServer(
            host,
            port,
            app,  # type: ignore[arg-type]
            handler=request_handler,
            fd=listening.fileno(),
            max_connections=max_connections,
        )
    finally:
        # werkzeug listens on its own duplicate of the socket.
        listening.close()


def redacted(text: str) -> str:
    """``text`` (a request target, a log message) without the tokens of local transfer URLs."""
    return _TRANSFER_TOKEN.sub(_REDACTED_TRANSFER, text)


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"
