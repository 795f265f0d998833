"""``WebClient`` for federated clients (upstream ``fma_connect``'s methods) and ``DeveloperClient``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fma_client import signing
from fma_client import weights as wire
from fma_client.errors import NotFound
from fma_client.transport import RetryPolicy, Transport

# Weights up to this many bytes (as arrays) go as the contract's JSON; larger ones through the upload flow.
# JSON takes about 2.5 times the bytes of float64 arrays: 1 MiB of arrays stays well within a request.
UPLOAD_THRESHOLD = 1024 * 1024
SAFETENSORS = {"format": "safetensors"}
# Page size of lists (the service's maximum for updates, aggregates, artifacts and scores).
_PAGE_SIZE = 20


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

    def _pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            try:
                rows = self._transport.json(
                    "GET", path, idempotent=True, params={**params, "page": page, "page_size": _PAGE_SIZE}
                )
            except NotFound:  # past the last page
                return
            yield from rows
            if len(rows) < _PAGE_SIZE:
                return
            page += 1

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
    ) -> dict[str, Any]:
        """Create a model (``fields``: ``requirement``, ``requirement_args``, ``allow_aggregation``, ...).

        ``client_auth="signed"`` makes a model whose clients sign their requests (``WebClient(key_file=...)``);
        ``registration`` (``"open"``, ``"invite"``, ``"closed"``) says who may register (``create_enrollment_token``,
        ``add_client``).

        ``initial_model`` (weights as for ``WebClient.send_update``) goes in the body when small, else through
        the upload flow right after the model is made.
        """
        body = {"name": name, "aggregator": aggregator, **fields}
        upload: wire.Upload | None = initial_model if isinstance(initial_model, os.PathLike) else None
        if initial_model is not None and upload is None:
            tensors, layered = wire.to_tensors(initial_model)
            if self._needs_upload(tensors, layered):
                upload = (tensors, layered)
            else:
                body["initial_model"] = wire.to_json(tensors, layered)
        model = self._transport.json("POST", "api/v1/models/", idempotent=False, json=body)
        if upload is not None:
            self._upload({"federated_model": model["id"], "purpose": "initial_model"}, upload)
            model = self.get_model(model["id"])
        return model

    def get_model(self, model_id: int) -> dict[str, Any]:
        return self._transport.json("GET", f"api/v1/models/{model_id}/", idempotent=True)

    def list_models(self) -> list[dict[str, Any]]:
        return self._transport.json("GET", "api/v1/models/", idempotent=True, params={"page_size": 200})

    def update_model(self, model_id: int, **fields: Any) -> dict[str, Any]:
        # A PATCH sets the same fields again when repeated.
        return self._transport.json("PATCH", f"api/v1/models/{model_id}/", idempotent=True, json=fields)

    def pause_model(self, model_id: int) -> dict[str, Any]:
        """Stop aggregating the model's updates (``allow_aggregation`` false)."""
        return self.update_model(model_id, allow_aggregation=False)

    def resume_model(self, model_id: int) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        """A new enrollment token of an ``invite`` model: ``uses`` registrations until ``expires_at``.

        ``expires_at`` defaults to the service's (in 7 days); a naive datetime is taken as local time. The
        answer (``id``, ``federated_model``, ``token``, ``uses``, ``used``, ``expires_at``, ``created_on``) is the
        only place ``token`` is ever shown: the service keeps only its hash. Hand it to the clients
        (``WebClient(model_id, enrollment_token=...)``).
        """
        body: dict[str, Any] = {"federated_model": model_id, "uses": uses}
        if expires_at is not None:
            body["expires_at"] = (expires_at if expires_at.tzinfo else expires_at.astimezone()).isoformat()
        # Made twice, a token is left whose key nobody ever saw, unusable: safe to repeat.
        return self._transport.json("POST", "api/v1/enrollment_tokens/", idempotent=True, json=body)

    def list_enrollment_tokens(self, model_id: int | None = None) -> list[dict[str, Any]]:
        """Enrollment tokens (of one model, or of all the developer's models), newest first; ``token`` None."""
        params = {} if model_id is None else {"federated_model": model_id}
        return list(self._pages("api/v1/enrollment_tokens/", **params))

    def get_enrollment_token(self, token_id: int) -> dict[str, Any]:
        """One enrollment token (``used`` counts its registrations so far; ``token`` None)."""
        return self._transport.json("GET", f"api/v1/enrollment_tokens/{token_id}/", idempotent=True)

    def revoke_enrollment_token(self, token_id: int) -> None:
        """Delete an enrollment token: no client registers with it any more (those it registered stay)."""
        self._transport.request("DELETE", f"api/v1/enrollment_tokens/{token_id}/", idempotent=False, expect=(204,))

    def list_aggregates(self, model_id: int) -> list[dict[str, Any]]:
        """The model's aggregates, oldest first (``result`` is the URL of the weights)."""
        rows = self._pages("api/v1/model_aggregates/", federated_model=model_id, ordering="created_on")
        return list(rows)

    def get_aggregate_result(self, aggregate_id: int) -> Any:
        """An aggregate's weights, in the model's dtype."""
        return self._download(f"api/v1/model_aggregates/{aggregate_id}/result/")[0]

    def list_scores(self, aggregate_id: int | None = None) -> list[dict[str, Any]]:
        """Clients' scores (of one aggregate, or of all the developer's models)."""
        params = {} if aggregate_id is None else {"aggregate": aggregate_id}
        return list(self._pages("api/v1/client_aggregate_scores/", **params))

    def publish(self, aggregate_id: int, version: str) -> dict[str, Any]:
        """Publish an aggregate as the model's artifact ``version`` (made its current artifact)."""
        return self._transport.json(
            "POST",
            f"api/v1/model_aggregates/{aggregate_id}/publish_aggregate/",
            idempotent=False,
            json={"version": version},
        )
