"""HTTP to the service: timeouts, retries with exponential backoff and jitter, typed errors, progress bars."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.auth import AuthBase
from tqdm import tqdm

from fma_client.errors import ServiceUnreachable, error_for

_log = logging.getLogger(__name__)
DEFAULT_URL = "http://127.0.0.1:8000/"
# Transfers larger than this show a progress bar (tqdm, on stderr).
PROGRESS_THRESHOLD = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
# Answers that mean "not done, try again later": throttled, or the service's side.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    """How often and how long to retry: ``attempts`` in all, delays ``base * 2**n`` capped at ``cap`` seconds.

    Each delay is drawn uniformly from [0, delay] ("full jitter"), so that many clients failing together do
    not retry together; a ``Retry-After`` of a 429 or 503 is waited at least.
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        jittered = random.uniform(0, min(self.cap, self.base * 2**attempt))
        return max(jittered, retry_after or 0.0)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Transport:
    """One session to one service; every call of the clients goes through ``request``.

    ``idempotent`` says whether a call may be sent again when its outcome is unknown (a connection lost
    after sending, a 5xx): GETs, PUTs of upload bytes, completing an upload, registering a known uuid.
    Others are retried only when the service certainly did not act: a 429, or no connection made.
    ``authenticated`` calls carry ``headers`` and are signed by ``signer``; transfer URLs (which carry their
    own signature) get neither.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        progress: bool = True,
    ) -> None:
        self.url = (url or DEFAULT_URL).rstrip("/") + "/"
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.progress = progress
        self.headers: dict[str, str] = {}
        # Signs each request sent with the caller's credentials (a client of a ``signed`` model), or None.
        self.signer: AuthBase | None = None

    def absolute(self, path: str) -> str:
        return urljoin(self.url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        expect: tuple[int, ...] = (200, 201),
        authenticated: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send ``method path`` (relative to the service, or absolute) and return an answer in ``expect``.

        Raises
        ------
        APIError
            (a typed subclass) for any other status, after the retries allowed.
        ServiceUnreachable
            when no answer came, after the retries allowed.
        """
        url = path if path.startswith(("http://", "https://")) else self.absolute(path)
        headers = {**(self.headers if authenticated else {}), **kwargs.pop("headers", {})}
        if authenticated and self.signer is not None:
            kwargs["auth"] = self.signer
        kwargs.setdefault("allow_redirects", False)
        body = kwargs.get("data")
        for attempt in range(self.retry.attempts):
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.ConnectionError as error:
                # A refused or timed-out connection never reached the service; anything later may have.
                unsent = isinstance(error, requests.ConnectTimeout) or "refused" in str(error).lower()
                if (idempotent or unsent) and attempt + 1 < self.retry.attempts:
                    self._wait(method, url, attempt, f"no connection ({error})", None)
                    continue
                raise ServiceUnreachable(f"{method} {url}: {error}") from error
            except requests.Timeout as error:
                if idempotent and attempt + 1 < self.retry.attempts:
                    self._wait(method, url, attempt, f"no answer within {self.timeout} s", None)
                    continue
                raise ServiceUnreachable(f"{method} {url}: no answer within {self.timeout} s") from error
            if response.status_code in expect:
                return response
            retryable = response.status_code == 429 or (idempotent and response.status_code in _RETRY_STATUSES)
            if retryable and attempt + 1 < self.retry.attempts:
                self._wait(method, url, attempt, f"answered {response.status_code}", _retry_after(response))
                continue
            raise error_for(response.status_code, _body(response), method=method, url=url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, method: str, url: str, attempt: int, reason: str, retry_after: float | None) -> None:
        """Sleep before the next attempt, saying so: a throttled run would otherwise wait in silence."""
        delay = self.retry.delay(attempt, retry_after)
        asked = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        _log.warning(
            "%s %s %s%s: waiting %.1f s before attempt %d of %d",
            method,
            urlsplit(url).path,
            reason,
            asked,
            delay,
            attempt + 2,
            self.retry.attempts,
        )
        self.retry.sleep(delay)

    def json(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> Any:
        response = self.request(method, path, idempotent=idempotent, **kwargs)
        return response.json() if response.content else None

    def upload(self, url: str, method: str, file: IO[bytes], size: int, headers: Mapping[str, str]) -> None:
        """Send ``size`` bytes of ``file`` (from its start) to a transfer URL, streamed in blocks.

        Idempotent: the same bytes to the same place, so a retry sends the file again from its start.
        """
        body = _ProgressReader(file, size, self._bar(size, "upload"))
        try:
            self.request(method, url, idempotent=True, authenticated=False, data=body, headers=dict(headers))
        finally:
            body.close_bar()

    def download(self, path: str, file: IO[bytes], *, params: Mapping[str, str]) -> Mapping[str, str]:
        """GET ``path`` into ``file``, block by block; the answer's ``FMA-*`` headers.

        A ``303`` is followed without the caller's credentials: a signed URL needs none, and a presigned S3
        URL must not get them. The ``FMA-*`` headers of the ``303`` (which aggregate or artifact the
        weights are) are kept, named in lower case.
        """
        response = self.request("GET", path, idempotent=True, params=params, expect=(200, 303), stream=True)
        headers = {name.lower(): value for name, value in response.headers.items() if name.lower().startswith("fma-")}
        if response.status_code == 303:
            response = self.request(
                "GET", response.headers["Location"], idempotent=True, authenticated=False, stream=True
            )
        total = int(response.headers.get("Content-Length") or 0)
        bar = self._bar(total, "download")
        try:
            for chunk in response.iter_content(_CHUNK):
                file.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            response.close()
            if bar is not None:
                bar.close()
        return headers

    def _bar(self, total: int, what: str) -> tqdm | None:
        if not self.progress or total < PROGRESS_THRESHOLD:
            return None
        return tqdm(total=total, unit="B", unit_scale=True, desc=f"fma {what}", leave=False)


class _ProgressReader:
    """The bytes of an upload, read from a file by requests in blocks, advancing a bar.

    ``len()`` gives requests the ``Content-Length`` (the transfer URL expects the exact size; no chunked
    encoding), and ``seek(0)`` lets a retry send it again.
    """

    def __init__(self, file: IO[bytes], size: int, bar: tqdm | None) -> None:
        self._file = file
        self._size = size
        self._progress = bar
        file.seek(0)

    def __len__(self) -> int:
        # The whole size: requests subtracts what ``tell()`` says was read already.
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(_CHUNK), b"")

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        if self._progress is not None:
            self._progress.update(len(block))
        return block

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._progress is not None and offset == 0 and whence == 0:
            self._progress.reset()
        return self._file.seek(offset, whence)

    def close_bar(self) -> None:
        if self._progress is not None:
            self._progress.close()
