"""Signed transfer URLs served by the real local server, spoken to with a plain HTTP client as a client would.

The URLs come from ``fma_django_connectors.storage.transfers`` in this process, signed with the server's key.
"""

import hashlib
import http.client
import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

import local_server
from fma_django_connectors.storage import transfers
from tests.servers import RunningServer
from tests.storage_faults import block_folder

pytestmark = pytest.mark.integration

SECRET_KEY = "transfer-tests-" + "k" * 40
OVER_LAMBDA_LIMIT = local_server.MAX_BODY_BYTES + 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = RunningServer(tmp_path_factory.mktemp("transfers"), env={"FMA_SECRET_KEY": SECRET_KEY}).wait_ready()
    yield running
    running.stop()


def _stored(server, name) -> Path:
    return server.data_dir / "media" / name


def _upload_target(server, name, *, size, expires_in=300):
    with override_settings(SECRET_KEY=SECRET_KEY):
        return transfers.upload_url(name, size=size, expires_in=expires_in, base_url=server.url)


def _download_url(server, name, **kwargs):
    with override_settings(SECRET_KEY=SECRET_KEY):
        return transfers.download_url(name, expires_in=300, base_url=server.url, **kwargs)


def _send(method, url, *, body=None, headers=None):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, parts.path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _put(target, body, **header_changes):
    return _send(target.method, target.url, body=body, headers={**target.headers, **header_changes})


class TestUpload:
    def test_body_over_lambdas_limit_is_stored_as_sent(self, server):
        body = os.urandom(OVER_LAMBDA_LIMIT)
        target = _upload_target(server, "uploads/big.bin", size=len(body))

        status, headers, answer = _put(target, body)

        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert json.loads(answer) == {"name": "uploads/big.bin", "size": len(body)}
        assert _stored(server, "uploads/big.bin").read_bytes() == body
        assert target.url.startswith(server.url)
        assert target.method == "PUT"
        assert target.headers["Content-Length"] == str(len(body))

    def test_upload_replaces_what_the_name_held(self, server):
        first, second = b"first version", b"second"
        _put(_upload_target(server, "uploads/replaced.bin", size=len(first)), first)

        status, _, _ = _put(_upload_target(server, "uploads/replaced.bin", size=len(second)), second)

        assert status == 200
        assert _stored(server, "uploads/replaced.bin").read_bytes() == second
        assert sorted(path.name for path in (server.data_dir / "media" / "uploads").glob("replaced*")) == [
            "replaced.bin"
        ]

    @pytest.mark.parametrize("sent", [9, 11])
    def test_body_of_another_size_is_refused(self, server, sent):
        target = _upload_target(server, "uploads/wrong-size.bin", size=10)

        status, headers, answer = _put(target, b"x" * sent, **{"Content-Length": str(sent)})

        assert (status, headers["Content-Type"]) == (400, "application/json")
        assert json.loads(answer) == {"detail": f"The body is {sent} bytes; this upload URL takes exactly 10 bytes."}
        assert not _stored(server, "uploads/wrong-size.bin").exists()

    def test_tampered_url_is_refused(self, server):
        target = _upload_target(server, "uploads/tampered.bin", size=3)
        other = _upload_target(server, "uploads/other-name.bin", size=3)
        # The payload of one URL with the signature of another.
        payload, signature = target.url.rsplit(":", 1)[0], other.url.rsplit(":", 1)[1]

        status, _, answer = _send("PUT", f"{payload}:{signature}", body=b"abc")

        assert status == 403
        assert json.loads(answer) == {"detail": "This transfer URL is not valid: its signature does not match."}
        assert not _stored(server, "uploads/tampered.bin").exists()

    def test_expired_url_is_refused(self, server):
        target = _upload_target(server, "uploads/late.bin", size=3, expires_in=1)
        while time.time() < target.expires_at.timestamp():
            time.sleep(0.05)

        status, _, answer = _put(target, b"abc")

        assert status == 403
        assert json.loads(answer) == {"detail": f"This transfer URL expired at {target.expires_at.isoformat()}."}
        assert not _stored(server, "uploads/late.bin").exists()

    def test_download_url_does_not_take_uploads(self, server):
        status, _, answer = _send("PUT", _download_url(server, "uploads/any.bin"), body=b"abc")

        assert status == 403
        assert json.loads(answer) == {"detail": "This transfer URL is signed for GET, not PUT."}

    def test_body_that_ends_early_leaves_nothing(self, server):
        target = _upload_target(server, "uploads/cut.bin", size=1_000_000)
        parts = urlsplit(target.url)
        head = f"PUT {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 1000000\r\n\r\n"
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
            connection.sendall(head.encode() + b"x" * 400_000)
            connection.shutdown(socket.SHUT_WR)
            answer = connection.makefile("rb").read()

        assert answer.startswith(b"HTTP/1.1 400 ")
        assert answer.endswith(b'{"detail": "The body ended after 400000 of 1000000 bytes."}')
        assert not _stored(server, "uploads/cut.bin").exists()

    def test_a_storage_that_cannot_keep_the_bytes_is_a_503_and_the_same_url_works_once_it_is_back(self, server):
        # Prepare: a plain file where the upload's folder should be, so the server cannot write under it.
        blocker = block_folder(server.data_dir / "media", "blocked-uploads")
        body = os.urandom(200_000)
        target = _upload_target(server, "blocked-uploads/update.bin", size=len(body))

        # Execute
        status, headers, answer = _put(target, body)
        blocker.unlink()
        retried, _, _ = _put(target, body)

        # Assert: the storage's fault, not the sender's ("the body ended" would send them looking for a bug).
        assert (status, headers["Content-Type"]) == (503, "application/json")
        assert json.loads(answer) == {
            "detail": "The storage could not keep the bytes (FileExistsError); send them again later."
        }
        assert retried == 200
        assert _stored(server, "blocked-uploads/update.bin").read_bytes() == body

    def test_refused_before_the_body_is_sent(self, server):
        target = _upload_target(server, "uploads/expect.bin", size=10)
        parts = urlsplit(target.url)
        head = (
            f"PUT {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {20 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n"
        )
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
            connection.sendall(head.encode())
            answer = connection.makefile("rb").read()

        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"100 Continue" not in answer
        assert answer.endswith(b'{"detail": "The body is 20971520 bytes; this upload URL takes exactly 10 bytes."}')


class TestDownload:
    def test_streams_the_stored_file_back(self, server):
        body = os.urandom(OVER_LAMBDA_LIMIT)
        _put(_upload_target(server, "downloads/big.bin", size=len(body)), body)

        status, headers, answer = _send("GET", _download_url(server, "downloads/big.bin"))

        assert status == 200
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Length"] == str(len(body))
        assert "Content-Disposition" not in headers
        assert answer == body

    def test_as_a_named_file(self, server):
        _put(_upload_target(server, "downloads/named.bin", size=2), b"ok")

        _, headers, answer = _send("GET", _download_url(server, "downloads/named.bin", filename="model.safetensors"))

        assert headers["Content-Disposition"] == 'attachment; filename="model.safetensors"'
        assert answer == b"ok"

    def test_missing_file_is_a_404(self, server):
        status, headers, answer = _send("GET", _download_url(server, "downloads/never-stored.bin"))

        assert (status, headers["Content-Type"]) == (404, "application/json")
        assert json.loads(answer) == {"detail": "Nothing is stored under this transfer URL."}

    def test_upload_url_does_not_serve_downloads(self, server):
        status, _, answer = _send("GET", _upload_target(server, "downloads/big.bin", size=1).url)

        assert status == 403
        assert json.loads(answer) == {"detail": "This transfer URL is signed for PUT, not GET."}


class TestAccessLog:
    """A transfer URL is a bearer credential for as long as it lives: the log names the request, not the URL."""

    def _logged(self, server, line):
        deadline = time.monotonic() + 10
        while line not in server.stderr():
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.05)
        return server.stderr()

    def test_transfer_urls_are_logged_without_their_token(self, server):
        target = _upload_target(server, "logged/secret.bin", size=2)
        download = _download_url(server, "logged/secret.bin")
        tampered = target.url[:-4] + "AAAA"
        tokens = [urlsplit(url).path.rpartition("/")[2] for url in (target.url, download, tampered)]

        assert _put(target, b"ok")[0] == 200
        assert _send("GET", download)[0] == 200
        assert _send("PUT", tampered, body=b"ok")[0] == 403
        assert _raw(server, f"PUT {urlsplit(target.url).path} extra HTTP/1.1\r\n\r\n".encode()).startswith(
            b"HTTP/1.1 400 "
        )

        log = self._logged(server, '"GET /local-transfers/[redacted] HTTP/1.1" 200 2 ')
        assert '"PUT /local-transfers/[redacted] HTTP/1.1" 200 ' in log
        assert '"PUT /local-transfers/[redacted] HTTP/1.1" 403 ' in log
        assert "Bad request syntax ('PUT /local-transfers/[redacted] extra HTTP/1.1')" in log
        for token in tokens:
            assert token.rpartition(":")[2] not in log


def _raw(server, data):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        return connection.makefile("rb").read()


def _peak_rss(pid):
    """The process's peak resident set size so far, in bytes (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


class _Pattern:
    """A ``size``-byte body produced piece by piece, so that the client holds no more of it than the server should."""

    def __init__(self, size):
        self.size, self.sent, self.digest = size, 0, hashlib.sha256()

    def __iter__(self):
        block = bytes(range(256)) * 256
        while self.sent < self.size:
            piece = block[: self.size - self.sent]
            self.sent += len(piece)
            self.digest.update(piece)
            yield piece


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_large_transfers_do_not_pass_through_memory(tmp_path):
    """A 64 MB upload and download raise the server's peak memory by far less than the body's size."""
    size = 64 * 1024 * 1024
    running = RunningServer(tmp_path / "data", env={"FMA_SECRET_KEY": SECRET_KEY}).wait_ready()
    try:
        # Warm up both routes, so that what they load once does not count as the transfer's.
        _put(_upload_target(running, "warm.bin", size=1), b"w")
        _send("GET", _download_url(running, "warm.bin"))
        before = _peak_rss(running.process.pid)

        body = _Pattern(size)
        status, _, _ = _put(_upload_target(running, "large.bin", size=size), iter(body))
        after_upload = _peak_rss(running.process.pid)
        download_status, _, downloaded = _send("GET", _download_url(running, "large.bin"))
        after_download = _peak_rss(running.process.pid)
    finally:
        running.stop()

    assert (status, download_status) == (200, 200)
    assert hashlib.sha256(downloaded).digest() == body.digest.digest()
    assert after_upload - before < size // 4, (before, after_upload)
    assert after_download - before < size // 4, (before, after_download)
