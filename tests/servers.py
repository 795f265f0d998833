"""``api_service/local_server.py`` started for real, in its own process, for tests that talk HTTP to it."""

import contextlib
import http.client
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPOSITORY_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60
SERVER_SCRIPT = REPOSITORY_DIR / "api_service" / "local_server.py"
# Variables of the test process that would change how the server starts; a test that wants one passes it in `env`.
_NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE",
    "PORT",
    "FMA_ADMIN_PASSWORD",
    "FMA_PAYLOAD_FORMAT",
    "FMA_AGGREGATION_TRIGGER",
    "FMA_LOCAL_DATABASE_URL",
    "FMA_CLAIM_LEASE_SECONDS",
    "FMA_LOCAL_SWEEP_SECONDS",
    "FMA_MEMORY_BUDGET_BYTES",
    "FMA_LOCAL_WORKERS",
    "FMA_LOCAL_IDLE_TIMEOUT",
    "FMA_LOCAL_HEADER_TIMEOUT",
    "FMA_LOCAL_MIN_BODY_RATE",
    "FMA_LOCAL_MAX_CONNECTIONS",
    "FMA_LOCAL_REGISTRATION_RATE",
}


def server_environment(data_dir, **env):
    """The test process's environment for a server on ``data_dir``, without what would steer it, plus ``env``."""
    inherited = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    return inherited | {
        "FMA_LOCAL_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY_DIR), str(REPOSITORY_DIR / "api_service")]),
        "PYTHONUNBUFFERED": "1",
        **env,
    }


class RunningServer:
    """``api_service/local_server.py`` in its own process, with its own data folder.

    ``payload_format`` None starts it without ``--payload-format`` (its default); ``env`` adds variables
    such as ``FMA_AGGREGATION_TRIGGER``.
    """

    def __init__(self, data_dir, *, admin_password=None, port=0, payload_format=None, env=None, name="server"):
        self.data_dir = data_dir
        self.payload_format = payload_format
        extra = dict(env or {})
        if admin_password is not None:
            extra["FMA_ADMIN_PASSWORD"] = admin_password
        # ``name`` tells apart the logs of servers sharing a data folder (and so its SQLite database).
        self.stderr_path = data_dir / f"{name}.stderr"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = self.stderr_path.open("w")
        format_option = () if payload_format is None else ("--payload-format", payload_format)
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--port", str(port), *format_option],
            env=server_environment(data_dir, **extra),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.stdout_lines = []
        self._ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self):
        for line in self.process.stdout:
            self.stdout_lines.append(line)
            if "Press Ctrl-C to stop." in line:
                self._ready.set()
        self._ready.set()

    @property
    def stdout(self):
        return "".join(self.stdout_lines)

    def wait_ready(self):
        assert self._ready.wait(START_TIMEOUT), f"no start-up banner:\n{self.stdout}\n{self.stderr()}"
        match = re.search(r"API +(http://127\.0\.0\.1:(\d+)/)api/v1/", self.stdout)
        assert match, f"server did not start:\n{self.stdout}\n{self.stderr()}"
        self.url, self.port = match[1], int(match[2])
        return self

    @property
    def admin_password(self):
        return re.search(r"Login +admin / (\S+)", self.stdout)[1]

    def stderr(self):
        return self.stderr_path.read_text()

    def stop(self, signum=signal.SIGINT):
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=30)
        finally:
            self._stderr.close()
        return self.process.returncode

    def request(self, method, path, *, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


# What most journeys run with: aggregation in the server, as `make run` does.
LOCAL_AGGREGATION = {"FMA_AGGREGATION_TRIGGER": "local"}


@contextlib.contextmanager
def serving(handler):
    """A real HTTP server on 127.0.0.1 (a free port) answering with ``handler`` from a thread, for the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_server(data_dir, **kwargs):
    """A :class:`RunningServer` ready on ``data_dir`` for the block, stopped after it (module fixtures yield it)."""
    server = RunningServer(data_dir, **kwargs).wait_ready()
    try:
        yield server
    finally:
        server.stop()
