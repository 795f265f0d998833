"""``WebClient`` for federated clients (upstream ``fma_connect``'s methods) and ``DeveloperClient``."""

from __future__ import annotations

import functools
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fma_client import signing
from fma_client import weights as wire
from fma_client.errors import AggregateTimeout, BadRequest, Conflict, NotFound, VersionTaken
from fma_client.results import Aggregate, Artifact, EnrollmentToken, Model, RecordT, Score, Update, UpdateStatus
from fma_client.transport import RetryPolicy, Transport

# Weights up to this many bytes (as arrays) go as the contract's JSON; larger ones through the upload flow.
# JSON takes about 2.5 times the bytes of float64 arrays: 1 MiB of arrays stays well within a request.
UPLOAD_THRESHOLD = 1024 * 1024
SAFETENSORS = {"format": "safetensors"}
# Page size of lists (the service's maximum for updates, aggregates, artifacts, scores and enrollment tokens);
# models come in pages of up to 200.
_PAGE_SIZE = 20
_MODEL_PAGE_SIZE = 200
# Seconds between two reads while waiting for an aggregate, and how long ``wait_for_aggregate`` waits.
POLL_INTERVAL = 1.0
WAIT_TIMEOUT = 60.0
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# How often ``publish()`` without a version picks again when another publish took its pick meanwhile.
_PUBLISH_ATTEMPTS = 3
T = TypeVar("T")


class _Client:
    """What both clients share: one transport, uploads and downloads of weights."""

    def __init__(
        self,
        url: str | None,
        *,
        timeout: float,
        retry: RetryPolicy | None,
        progress: bool,
        upload_threshold: int,
    ) -> None:
        self._transport = Transport(url, timeout=timeout, retry=retry, progress=progress)
        self.upload_threshold = upload_threshold

    @property
    def url(self) -> str:
        """URL of the service."""
        return self._transport.url

    def _pages(self, path: str, *, page_size: int = _PAGE_SIZE, **params: Any) -> Iterator[dict[str, Any]]:
        """Every row of a list, page after page (a short page is the last; past the last the service says 404)."""
        page = 1
        while True:
            try:
                rows = self._transport.json(
                    "GET", path, idempotent=True, params={**params, "page": page, "page_size": page_size}
                )
            except NotFound:  # past the last page
                return
            yield from rows
            if len(rows) < page_size:
                return
            page += 1

    @staticmethod
    def _poll(check: Callable[[], T | None], *, timeout: float | None, poll: float, waiting_for: str) -> T:
        """``check()`` every ``poll`` seconds until it answers; ``AggregateTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (found := check()) is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise AggregateTimeout(f"no {waiting_for} within {timeout:g} s")
            time.sleep(poll if left is None else min(poll, left))
        return found

    def _follow(
        self,
        newer: Callable[[int | None], list[T]],
        identify: Callable[[T], int],
        after: int | None,
        *,
        poll: float,
        idle_timeout: float | None,
        waiting_for: str,
    ) -> Iterator[T]:
        """What ``newer(after)`` finds, then again after the last of it, until ``idle_timeout`` passes idle."""
        while True:
            try:
                found = self._poll(
                    lambda since=after: newer(since) or None,
                    timeout=idle_timeout,
                    poll=poll,
                    waiting_for=waiting_for,
                )
            except AggregateTimeout:
                return
            yield from found
            after = identify(found[-1])

    def _download(self, path: str) -> tuple[Any, dict[str, str]]:
        # Through a file: the weights are read from it tensor by tensor, never held twice.
        with tempfile.TemporaryDirectory(prefix="fma-") as folder:
            target = Path(folder) / "weights.safetensors"
            headers = self._download_to(path, target)
            return wire.read_safetensors(target), headers

    def _download_to(self, path: str, target: str | os.PathLike[str]) -> dict[str, str]:
        with Path(target).open("wb") as file:
            return dict(self._transport.download(path, file, params=SAFETENSORS))

    def download_aggregate(self, aggregate_id: int, path: str | os.PathLike[str]) -> Path:
        """Write an aggregate's weights to ``path`` as a safetensors file, streamed: the model is never in memory.

        Read it with ``fma_client.read_weights(path)``, or tensor by tensor with ``safetensors.safe_open``.
        """
        self._download_to(f"api/v1/model_aggregates/{aggregate_id}/result/", path)
        return Path(path)

    def _upload(self, fields: dict[str, Any], weights: wire.Upload) -> dict[str, Any]:
        """The three steps of ``/api/v1/uploads/``; the answer of ``complete`` (an update or an artifact).

        ``weights``: a safetensors file, sent as it is, or tensors, written to a temporary file first; either
        way the body is streamed from the file (hashed there first), not held in memory.
        """
        with wire.upload_file(weights) as file:
            size, sha256 = wire.file_digest(file)
            body = {**fields, "format": "safetensors", "size": size, "sha256": sha256}
            # Making an upload twice leaves an unused one that expires: safe to repeat.
            target = self._transport.json("POST", "api/v1/uploads/", idempotent=True, json=body)
            self._transport.upload(target["upload_url"], target["method"], file, size, target["headers"])
        return self._transport.json("POST", f"api/v1/uploads/{target['id']}/complete/", idempotent=True)

    def _needs_upload(self, tensors: dict[str, Any], layered: bool | None) -> bool:
        return layered is None or wire.nbytes(tensors) > self.upload_threshold


class WebClient(_Client):
    """A federated client of one model: upstream ``fma_connect.WebClient``'s methods and answers.

    Parameters
    ----------
    federated_model_id
        The model this client trains.
    uuid
        The client's uuid if it registered before; else ``register()`` (or the first use of ``uuid``) makes one.
    url
        The service's root URL (default ``http://127.0.0.1:8000/``).
    timeout, retry, progress, upload_threshold
        Seconds per request; a ``RetryPolicy``; progress bars above a few MB; bytes past which weights
        are uploaded as safetensors instead of posted as JSON.
    key_file, private_key
        For a model with ``client_auth: "signed"``: the client's Ed25519 key, as a PEM file (made, with a new
        key, when it does not exist yet; see ``fma_client.signing``) or as a key object (not both). With a
        key, the client registers its public key and signs every request to the API.
    enrollment_token
        For a model with ``registration: "invite"``: the enrollment token its developer handed out
        (``DeveloperClient.create_enrollment_token``), presented by ``register()``. A client the developer
        added to a ``closed`` model needs none: give it the ``uuid`` (and key) the developer got for it.
    """

    def __init__(
        self,
        federated_model_id: int,
        uuid: str | None = None,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        progress: bool = True,
        upload_threshold: int = UPLOAD_THRESHOLD,
        key_file: str | os.PathLike[str] | None = None,
        private_key: Ed25519PrivateKey | None = None,
        enrollment_token: str | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, retry=retry, progress=progress, upload_threshold=upload_threshold)
        self._enrollment_token = enrollment_token
        if key_file is not None and private_key is not None:
            raise ValueError("give key_file or private_key, not both")
        self._private_key = signing.load_or_create_key(key_file) if key_file is not None else private_key
        if self._private_key is not None:
            self._transport.signer = signing.RequestSigner(self._private_key, self._transport.url)
        self._federated_model_id = federated_model_id
        self._uuid: str | None = None
        self._set_uuid(uuid)
        self._is_registered = False
        self._last_model_aggregate: int | None = None

    def _set_uuid(self, uuid: str | None) -> None:
        self._uuid = str(uuid) if uuid else None
        self._transport.headers = {"CLIENT-UUID": self._uuid} if self._uuid else {}

    @property
    def uuid(self) -> str:
        """The client's uuid (registering first when it has none)."""
        if self._uuid is None:
            self.register()
        assert self._uuid is not None
        return self._uuid

    @property
    def federated_model_id(self) -> int:
        return self._federated_model_id

    @property
    def public_key(self) -> str | None:
        """The public key this client signs for (base64 of its 32 raw bytes), or None when it does not sign."""
        return None if self._private_key is None else signing.public_key_text(self._private_key)

    def register(self) -> str:
        """Register to the model (a new client without a uuid; idempotent with one); the uuid.

        A new client with a key registers its public key, in a request signed by that key (the proof that it
        holds it); a known one proves it holds its key by signing. The ``enrollment_token``, when given, goes
        along: an ``invite`` model counts one of its uses when it registers the client, none when the client
        was registered already.

        Raises
        ------
        NotFound
            The model refused the registration (``invite`` without a valid token: unknown, spent, expired or
            revoked; ``closed``), which the service answers exactly as an unknown model id.
        Conflict
            The key is already another client's (a key names one client): register with a new key, or run as
            that client (``uuid=...``).
        """
        body: dict[str, str] = {}
        if self._uuid is None and self._private_key is not None:
            body["public_key"] = signing.public_key_text(self._private_key)
        if self._enrollment_token is not None:
            body["enrollment_token"] = self._enrollment_token
        answer = self._transport.json(
            "POST",
            f"api/v1/models/{self._federated_model_id}/register_client/",
            # With a uuid registering again changes nothing; without one a retry would make a second client.
            idempotent=self._uuid is not None,
            expect=(200, 201),
            json=body or None,
        )
        self._set_uuid(answer["uuid"])
        self._is_registered = True
        return answer["uuid"]

    def send_update(self, data: Any, base_aggregate: int | None = None, num_examples: int | None = None) -> dict:
        """Send an update: the service's answer (the update, ``data`` as JSON or as its URL).

        ``data``: an array, a list of arrays (layers), nested lists, or a mapping of names to arrays
        (a ``state_dict``; PyTorch tensors are taken as they are), or the path (``pathlib.Path``) of a
        safetensors file, streamed from the disk as it is. Weights larger than ``upload_threshold``, and named
        tensors, go through the upload flow as safetensors (dtypes kept), retried safely.
        """
        fields: dict[str, Any] = {"federated_model": self._federated_model_id, "base_aggregate": base_aggregate}
        if num_examples is not None:
            fields["num_examples"] = num_examples
        if isinstance(data, os.PathLike):
            return self._upload({**fields, "purpose": "update"}, data)
        tensors, layered = wire.to_tensors(data)
        if self._needs_upload(tensors, layered):
            return self._upload({**fields, "purpose": "update"}, (tensors, layered))
        body = {**fields, "data": wire.to_json(tensors, layered)}
        # Not repeated when the outcome is unknown: the service would store the update twice.
        return self._transport.json("POST", "api/v1/model_updates/", idempotent=False, json=body)

    def _newest_aggregate(self) -> dict[str, Any] | None:
        rows = self._transport.json(
            "GET",
            "api/v1/model_aggregates/",
            idempotent=True,
            params={"federated_model": self._federated_model_id, "page_size": 1},
        )
        if rows:
            return rows[0]
        # An empty list is also all that a client not registered to the model sees: the model's own route
        # tells the two apart (403), cheaply while there is no aggregate (``{}``).
        self._transport.json("GET", f"api/v1/models/{self._federated_model_id}/get_latest_aggregate/", idempotent=True)
        return None

    def _is_new(self, aggregate_id: int, update_after: int | None) -> bool:
        last = update_after if update_after is not None else self._last_model_aggregate
        known = [value for value in (self._last_model_aggregate, aggregate_id) if value is not None]
        self._last_model_aggregate = max(known)
        return last is None or aggregate_id > last

    def check_for_new_model_aggregate(self, update_after: int | None = None) -> dict | None:
        """The newest aggregate if newer than ``update_after`` (default: the newest this client has seen).

        ``result`` holds the weights as arrays in the model's dtype. None when there is nothing newer; the
        weights are downloaded only then.
        """
        aggregate = self._newest_aggregate()
        if aggregate is None or not self._is_new(aggregate["id"], update_after):
            return None
        result, _ = self._download(f"api/v1/model_aggregates/{aggregate['id']}/result/")
        return {**aggregate, "result": result}

    def wait_for_aggregate(
        self, after: int | None = None, *, timeout: float | None = WAIT_TIMEOUT, poll: float = POLL_INTERVAL
    ) -> dict:
        """The newest aggregate once there is one newer than ``after``, as ``check_for_new_model_aggregate``.

        ``after`` defaults to the newest aggregate this client has seen (any aggregate, when it has seen
        none). Reads one row every ``poll`` seconds; raises ``AggregateTimeout`` after ``timeout`` seconds
        (None: waits for ever).
        """
        return self._poll(
            lambda: self.check_for_new_model_aggregate(update_after=after),
            timeout=timeout,
            poll=poll,
            waiting_for=f"aggregate of model {self._federated_model_id} newer than {after}",
        )

    def iter_aggregates(
        self, after: int | None = None, *, poll: float = POLL_INTERVAL, idle_timeout: float | None = None
    ) -> Iterator[dict]:
        """Each new global model as it comes: ``wait_for_aggregate`` again and again.

        A client wants the current model, so when several aggregates were made between two reads only the
        newest is yielded. Ends when nothing new came for ``idle_timeout`` seconds (None: never).
        """

        def newer(since: int | None) -> list[dict]:
            found = self.check_for_new_model_aggregate(update_after=since)
            return [] if found is None else [found]

        return self._follow(
            newer,
            lambda aggregate: aggregate["id"],
            after,
            poll=poll,
            idle_timeout=idle_timeout,
            waiting_for=f"aggregate of model {self._federated_model_id}",
        )

    def check_for_latest_model(self, update_after: int | None = None) -> dict | None:
        """``{"values": weights, "aggregate": id or None}`` if newer than ``update_after``, else None.

        The newest aggregate's weights, else the current artifact's (``aggregate`` None, counted as -1 as
        upstream does); None too when the model has no weights.
        """
        aggregate = self._newest_aggregate()
        if not self._is_new(aggregate["id"] if aggregate else -1, update_after):
            return None
        try:
            values, headers = self._download(f"api/v1/models/{self._federated_model_id}/get_latest_model/")
        except NotFound:
            return None
        aggregate_id = headers.get("fma-aggregate-id")
        return {"values": values, "aggregate": int(aggregate_id) if aggregate_id else None}

    def download_latest_model(self, path: str | os.PathLike[str]) -> int | None:
        """Write the model's latest weights (as ``check_for_latest_model``) to ``path`` as safetensors, streamed.

        The id of the aggregate they are, or None for the current artifact's. Raises ``NotFound`` when the
        model has no weights.
        """
        headers = self._download_to(f"api/v1/models/{self._federated_model_id}/get_latest_model/", path)
        aggregate_id = headers.get("fma-aggregate-id")
        return int(aggregate_id) if aggregate_id else None

    def get_current_artifact(self) -> dict:
        """The model's current artifact (``values`` as arrays in the model's dtype), or ``{}`` without one."""
        try:
            values, headers = self._download(f"api/v1/models/{self._federated_model_id}/get_current_artifact/")
        except NotFound:
            return {}
        artifact_id = int(headers["fma-artifact-id"])
        rows = self._pages("api/v1/model_artifacts/", federated_model=self._federated_model_id)
        row = next((row for row in rows if row["id"] == artifact_id), {"id": artifact_id})
        return {**row, "values": values}

    def send_val_results(self, results: Any, aggregate_id: int) -> dict:
        """Send this client's validation results of an aggregate (its score); the service's answer."""
        body = {
            "validation_results": results,
            "federated_model": self._federated_model_id,
            "aggregate": aggregate_id,
            "client": self._uuid,
        }
        return self._transport.json("POST", "api/v1/client_aggregate_scores/", idempotent=False, json=body)


class DeveloperClient(_Client):
    """A model developer: token login, models (create, pause, resume, delete), who may register (clients it adds,
    enrollment tokens), aggregates, scores, publishing.

    Give ``token``, or ``username`` and ``password`` (exchanged for a token at ``/api-token-auth/``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        progress: bool = True,
        upload_threshold: int = UPLOAD_THRESHOLD,
    ) -> None:
        super().__init__(url, timeout=timeout, retry=retry, progress=progress, upload_threshold=upload_threshold)
        if token is None and username is not None:
            token = self.login(username, password or "")
        if token is not None:
            self._transport.headers = {"Authorization": f"Token {token}"}

    def login(self, username: str, password: str) -> str:
        """Exchange a username and password for the developer's token (and use it from now on)."""
        answer = self._transport.json(
            "POST",
            "api-token-auth/",
            idempotent=True,
            authenticated=False,
            json={"username": username, "password": password},
        )
        self._transport.headers = {"Authorization": f"Token {answer['token']}"}
        return answer["token"]

    def create_model(
        self, name: str, aggregator: str = "fed_avg", *, initial_model: Any = None, **fields: Any
    ) -> Model:
        """Create a model (``fields``: ``requirement``, ``requirement_args``, ``allow_aggregation``, ...).

        ``client_auth="signed"`` makes a model whose clients sign their requests (``WebClient(key_file=...)``);
        ``registration`` (``"open"``, ``"invite"``, ``"closed"``) says who may register (``create_enrollment_token``,
        ``add_client``).

        ``initial_model`` (weights as for ``WebClient.send_update``) goes in the body when small, else through
        the upload flow right after the model is made. It becomes the model's artifact of version ``1.0.0``
        (its ``current_artifact``): what clients get until the first aggregate.
        """
        body = {"name": name, "aggregator": aggregator, **fields}
        upload: wire.Upload | None = initial_model if isinstance(initial_model, os.PathLike) else None
        if initial_model is not None and upload is None:
            tensors, layered = wire.to_tensors(initial_model)
            if self._needs_upload(tensors, layered):
                upload = (tensors, layered)
            else:
                body["initial_model"] = wire.to_json(tensors, layered)
        model = self._row(Model, "POST", "api/v1/models/", idempotent=False, json=body)
        if upload is not None:
            self._upload({"federated_model": model.id, "purpose": "initial_model"}, upload)
            model = self.get_model(model.id)
        return model

    def _row(self, kind: type[RecordT], method: str, path: str, *, idempotent: bool, **kwargs: Any) -> RecordT:
        return kind.from_json(self._transport.json(method, path, idempotent=idempotent, **kwargs))

    def _rows(self, kind: type[RecordT], path: str, **params: Any) -> list[RecordT]:
        return [kind.from_json(row) for row in self._pages(path, **params)]

    def get_model(self, model_id: int) -> Model:
        return self._row(Model, "GET", f"api/v1/models/{model_id}/", idempotent=True)

    def list_models(self) -> list[Model]:
        """Every model of the developer (staff: every model), newest first."""
        return self._rows(Model, "api/v1/models/", page_size=_MODEL_PAGE_SIZE)

    def update_model(self, model_id: int, **fields: Any) -> Model:
        # A PATCH sets the same fields again when repeated.
        return self._row(Model, "PATCH", f"api/v1/models/{model_id}/", idempotent=True, json=fields)

    def pause_model(self, model_id: int) -> Model:
        """Stop aggregating the model's updates (``allow_aggregation`` false)."""
        return self.update_model(model_id, allow_aggregation=False)

    def resume_model(self, model_id: int) -> Model:
        """Aggregate the model's updates again (``allow_aggregation`` true)."""
        return self.update_model(model_id, allow_aggregation=True)

    def delete_model(self, model_id: int) -> None:
        self._transport.request("DELETE", f"api/v1/models/{model_id}/", idempotent=False, expect=(204,))

    def add_client(self, model_id: int, *, public_key: str | Ed25519PublicKey | None = None) -> str:
        """Add a new client to the model (the way into a ``closed`` one); the client's uuid, to hand to it.

        On a ``client_auth: "signed"`` model give the client's ``public_key`` (its ``WebClient.public_key``, or
        the key object): the client keeps its private key, and then runs as
        ``WebClient(model_id, uuid=uuid, key_file=...)``. A key already another client's raises ``Conflict``.
        """
        if isinstance(public_key, Ed25519PublicKey):
            public_key = signing.public_key_text(public_key)
        body = {} if public_key is None else {"public_key": public_key}
        answer = self._transport.json(
            "POST",
            f"api/v1/models/{model_id}/add_client/",
            # A retry could add a second client.
            idempotent=False,
            expect=(201,),
            json=body or None,
        )
        return answer["uuid"]

    def create_enrollment_token(
        self, model_id: int, *, uses: int = 1, expires_at: datetime | None = None
    ) -> EnrollmentToken:
        """A new enrollment token of an ``invite`` model: ``uses`` registrations until ``expires_at``.

        ``expires_at`` defaults to the service's (in 7 days); a naive datetime is taken as local time. The
        answer's ``token`` is the only place it is ever shown: the service keeps only its hash. Hand it to
        the clients (``WebClient(model_id, enrollment_token=...)``).
        """
        body: dict[str, Any] = {"federated_model": model_id, "uses": uses}
        if expires_at is not None:
            body["expires_at"] = (expires_at if expires_at.tzinfo else expires_at.astimezone()).isoformat()
        # Made twice, a token is left whose key nobody ever saw, unusable: safe to repeat.
        return self._row(EnrollmentToken, "POST", "api/v1/enrollment_tokens/", idempotent=True, json=body)

    def list_enrollment_tokens(self, model_id: int | None = None) -> list[EnrollmentToken]:
        """Enrollment tokens (of one model, or of all the developer's models), newest first; ``token`` None."""
        params = {} if model_id is None else {"federated_model": model_id}
        return self._rows(EnrollmentToken, "api/v1/enrollment_tokens/", **params)

    def get_enrollment_token(self, token_id: int) -> EnrollmentToken:
        """One enrollment token (``used`` counts its registrations so far; ``token`` None)."""
        return self._row(EnrollmentToken, "GET", f"api/v1/enrollment_tokens/{token_id}/", idempotent=True)

    def revoke_enrollment_token(self, token_id: int) -> None:
        """Delete an enrollment token: no client registers with it any more (those it registered stay)."""
        self._transport.request("DELETE", f"api/v1/enrollment_tokens/{token_id}/", idempotent=False, expect=(204,))

    def list_updates(self, model_id: int | None = None, *, status: UpdateStatus | None = None) -> list[Update]:
        """Clients' updates (of one model, or of all the developer's models), newest first; ``data`` a URL."""
        params: dict[str, Any] = {} if model_id is None else {"federated_model": model_id}
        if status is not None:
            params["status"] = int(status)
        return self._rows(Update, "api/v1/model_updates/", **params)

    def list_aggregates(self, model_id: int) -> list[Aggregate]:
        """The model's aggregates, oldest first (``result`` is the URL of the weights)."""
        return self._rows(Aggregate, "api/v1/model_aggregates/", federated_model=model_id, ordering="created_on")

    def get_aggregate(self, aggregate_id: int) -> Aggregate:
        """One aggregate (``result``: its weights as JSON, when they fit an answer)."""
        return self._row(Aggregate, "GET", f"api/v1/model_aggregates/{aggregate_id}/", idempotent=True)

    def _aggregates_after(self, model_id: int, after: int | None) -> list[Aggregate]:
        """The model's aggregates newer than ``after`` (all when None), oldest first: reads newest first."""
        rows = self._pages("api/v1/model_aggregates/", federated_model=model_id, ordering="-created_on")
        newer = [Aggregate.from_json(row) for row in _until(rows, lambda row: after is not None and row["id"] <= after)]
        return newer[::-1]

    def _newest_aggregate_after(self, model_id: int, after: int | None) -> Aggregate | None:
        rows = self._transport.json(
            "GET",
            "api/v1/model_aggregates/",
            idempotent=True,
            params={"federated_model": model_id, "ordering": "-created_on", "page_size": 1},
        )
        newest = Aggregate.from_json(rows[0]) if rows else None
        return newest if newest is not None and (after is None or newest.id > after) else None

    def wait_for_aggregate(
        self,
        model_id: int,
        after: int | None = None,
        *,
        timeout: float | None = WAIT_TIMEOUT,
        poll: float = POLL_INTERVAL,
    ) -> Aggregate:
        """The model's newest aggregate once there is one newer than ``after`` (None: any aggregate).

        Reads every ``poll`` seconds; raises ``AggregateTimeout`` after ``timeout`` seconds (None: waits
        for ever).
        """
        return self._poll(
            lambda: self._newest_aggregate_after(model_id, after),
            timeout=timeout,
            poll=poll,
            waiting_for=f"aggregate of model {model_id} newer than {after}",
        )

    def iter_aggregates(
        self,
        model_id: int,
        after: int | None = None,
        *,
        poll: float = POLL_INTERVAL,
        idle_timeout: float | None = None,
    ) -> Iterator[Aggregate]:
        """Every aggregate of the model newer than ``after`` (None: from the first), oldest first, then each new
        one as it is made. Ends when nothing new came for ``idle_timeout`` seconds (None: never).
        """
        return self._follow(
            functools.partial(self._aggregates_after, model_id),
            lambda aggregate: aggregate.id,
            after,
            poll=poll,
            idle_timeout=idle_timeout,
            waiting_for=f"aggregate of model {model_id}",
        )

    def get_aggregate_result(self, aggregate_id: int) -> Any:
        """An aggregate's weights, in the model's dtype."""
        return self._download(f"api/v1/model_aggregates/{aggregate_id}/result/")[0]

    def list_scores(self, aggregate_id: int | None = None) -> list[Score]:
        """Clients' scores (of one aggregate, or of all the developer's models)."""
        params = {} if aggregate_id is None else {"aggregate": aggregate_id}
        return self._rows(Score, "api/v1/client_aggregate_scores/", **params)

    def list_artifacts(self, model_id: int | None = None) -> list[Artifact]:
        """Artifacts (published versions) of one model, or of all the developer's models; newest first."""
        params = {} if model_id is None else {"federated_model": model_id}
        return self._rows(Artifact, "api/v1/model_artifacts/", **params)

    def publish(self, aggregate: int | Aggregate, version: str | None = None) -> Artifact:
        """Publish an aggregate as an artifact of the model (made its current artifact).

        Without ``version`` it takes the next free one: the highest ``MAJOR.MINOR.PATCH`` of the model's
        artifacts with MINOR raised (``1.1.0`` after the initial model's ``1.0.0``), ``1.0.0`` when there is
        none. ``aggregate`` is an id or an ``Aggregate`` (which saves reading it to learn its model).

        Raises
        ------
        VersionTaken
            ``version`` is already one of the model's artifacts (``error.version`` names it).
        """
        aggregate_id = aggregate.id if isinstance(aggregate, Aggregate) else aggregate
        if version is not None:
            return self._publish(aggregate_id, version)
        model_id = (
            aggregate if isinstance(aggregate, Aggregate) else self._listed_aggregate(aggregate)
        ).federated_model
        for attempt in range(_PUBLISH_ATTEMPTS):
            try:
                return self._publish(
                    aggregate_id, next_version(artifact.version for artifact in self.list_artifacts(model_id))
                )
            except VersionTaken:  # another publish took the pick between reading and publishing
                if attempt + 1 == _PUBLISH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _listed_aggregate(self, aggregate_id: int) -> Aggregate:
        """An aggregate as lists carry it (``result`` its URL), looked for newest first, where a new one is.

        Not ``get_aggregate``: that route inlines the weights, which for a large model do not fit an answer.
        """
        rows = self._pages("api/v1/model_aggregates/", ordering="-created_on")
        for row in _until(rows, lambda row: row["id"] < aggregate_id):
            if row["id"] == aggregate_id:
                return Aggregate.from_json(row)
        raise NotFound(404, {"detail": f"No aggregate {aggregate_id} among the developer's."}, method="GET")

    def _publish(self, aggregate_id: int, version: str) -> Artifact:
        try:
            return self._row(
                Artifact,
                "POST",
                f"api/v1/model_aggregates/{aggregate_id}/publish_aggregate/",
                idempotent=False,
                json={"version": version},
            )
        except (BadRequest, Conflict) as error:
            # The service names the field and says why: a version too long is a ``BadRequest`` of its own.
            if isinstance(error.body, dict) and "already has" in str(error.body.get("version", "")):
                raise VersionTaken(error, version=version) from error
            raise


def next_version(versions: Iterable[str]) -> str:
    """The version after the highest ``MAJOR.MINOR.PATCH`` of ``versions``: MINOR raised, PATCH 0."""
    numbers = [tuple(int(part) for part in match.groups()) for match in map(_SEMVER.fullmatch, versions) if match]
    if not numbers:
        return "1.0.0"
    major, minor, _ = max(numbers)
    return f"{major}.{minor + 1}.0"


def _until(rows: Iterable[T], stop: Callable[[T], bool]) -> Iterator[T]:
    """``rows`` up to the first for which ``stop`` holds (the rest is not read: later pages are not fetched)."""
    for row in rows:
        if stop(row):
            return
        yield row
