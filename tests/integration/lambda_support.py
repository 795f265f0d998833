"""What the tests that run the functions as Lambda would share: warm containers, API Gateway calls, and the
AWS (a moto server) and PostgreSQL database they run against."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import requests
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import ThreadedMotoServer
from psycopg2 import sql

from tests.events import make_v2_event, response_body

RUNTIME = Path(__file__).with_name("lambda_runtime.py")
PG = {
    "host": os.environ.get("FMA_TEST_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("FMA_TEST_PG_PORT", "5432"),
    "user": os.environ.get("FMA_TEST_PG_USER", "postgres"),
}


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (Lambda without Docker); its URL. Reset when done."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10).raise_for_status()
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": True}}, timeout=10)
        server.stop()


@contextmanager
def watched_invokes() -> Iterator[list[dict]]:
    """Every Lambda invoke the moto server (in this process) receives: function, invocation type and payload.

    moto accepts asynchronous invokes without recording them; the tests replay the payloads as Lambda would.
    """
    seen: list[dict] = []
    original = LambdaSimpleBackend.invoke

    def watch(self, function_name, qualifier, body, headers, response_headers):
        seen.append(
            {
                "function": function_name,
                "type": headers.get("X-Amz-Invocation-Type", "RequestResponse"),
                "payload": json.loads(body),
            }
        )
        return original(self, function_name, qualifier, body, headers, response_headers)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LambdaSimpleBackend, "invoke", watch)
        yield seen


def _execute(statement, arguments=()):
    """``statement`` on the test server's maintenance database, outside a transaction; its rows."""
    connection = psycopg2.connect(dbname="postgres", **PG)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, arguments)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def terminate_connections(database: str) -> int:
    """End every connection to ``database`` from the server side (as a failover or an RDS Proxy's idle timeout
    does); how many there were."""
    ended = _execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database],
    )
    assert ended, f"no connection to {database}"
    assert all(row == (True,) for row in ended), ended
    return len(ended)


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """An empty PostgreSQL database ``name`` on the test server, dropped when done."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    _execute(drop)
    _execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        _execute(drop)


def create_aggregator_function(iam, lambda_client) -> str:
    """The aggregator as a function moto knows (a stub: the tests run the real one themselves); its ARN."""
    role = iam.create_role(
        RoleName="fma-aggregator",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("aggregator_initialization.py", "def handler(event, context):\n    return None\n")
    return lambda_client.create_function(
        FunctionName="fma-aggregator",
        Runtime="python3.12",
        Role=role,
        Handler="aggregator_initialization.handler",
        Code={"ZipFile": package.getvalue()},
    )["FunctionArn"]


class LambdaContainer:
    """One warm container of a function: a process running ``lambda_runtime.py`` over the events it is sent.

    By default the repository's code under this Python; with ``python`` and ``code_root``, a built artifact
    under the runtime's Python, isolated (``-I``) with only ``code_root`` on the path, as Lambda runs it.
    """

    def __init__(self, module, environment, log_path, *, python=sys.executable, code_root=None):
        self.log_path = log_path
        command = [python, str(RUNTIME), module]
        if code_root is not None:
            command = [python, "-I", str(RUNTIME), "--code-root", str(code_root), module]
        self.process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_path.open("w"),
            text=True,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next("READY")

    def invoke(self, event, *, timeout=120):
        """The handler's answer to ``event`` within ``timeout`` seconds; the test fails, with the function's log,
        if it raised or did not answer."""
        kind, value = self._send(event, timeout=timeout)
        assert kind == "RESULT", f"{value}\n--- function log ---\n{self.log_path.read_text()}"
        return value

    def invoke_failing(self, event):
        """``"<exception type>: <message>"`` of the handler's failure on ``event``."""
        kind, value = self._send(event)
        assert kind == "ERROR", f"expected a failure, got {value!r}"
        return value

    def send(self, event):
        """Hand ``event`` to the handler without waiting for its answer (a test may kill the container meanwhile)."""
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()

    def _send(self, event, *, timeout=120):
        self.send(event)
        return self._next("RESULT", "ERROR", timeout=timeout)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, *kinds, timeout=120):
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no answer from the function\n--- function log ---\n{self.log_path.read_text()}")
            if line is None:
                pytest.fail(f"the function exited\n--- function log ---\n{self.log_path.read_text()}")
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind in kinds:
                return kind, json.loads(rest) if rest else None


class Api:
    """HTTP calls to the API function, as API Gateway (HTTP API, ``$default`` stage) turns them into events."""

    def __init__(self, function, host, *, timeout=120):
        self.function = function
        self.host = host
        self.timeout = timeout

    def __call__(self, method, path, body=None, headers=None):
        event = make_v2_event(
            method=method,
            path=path,
            host=self.host,
            headers={"Content-Type": "application/json", **(headers or {})},
            body=None if body is None else json.dumps(body),
        )
        response = self.function.invoke(event, timeout=self.timeout)
        content = response_body(response)
        is_json = response["headers"].get("content-type", "").startswith("application/json")
        return response["statusCode"], json.loads(content) if is_json else content
