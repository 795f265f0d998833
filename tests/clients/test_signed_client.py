"""``fma_client`` signing its requests (``client_auth: "signed"``), proven against the real local server.

The SDK signs with an RFC 9421 library (it is installed without the service); the service's acceptance,
and ``fma_core.signatures`` checking what the SDK signs, are the proof that both say the same.
"""

import json
import os
import shutil
import stat
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fma_client import BadRequest, Conflict, RetryPolicy, Unauthorized, WebClient, signing
from fma_core import signatures
from fma_django_connectors.client_ids import client_public_id
from tests.clients.support import INITIAL, UPDATE, wait_for
from tests.servers import serving

pytestmark = pytest.mark.integration

SIGNED_CLIENT_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "signed-client.sh"

# The service's answer to a registered client's unsigned request on a signed model (``permissions.py``).
SIGNATURE_REQUIRED = (
    "This model takes signed requests only: sign it with the client's key (RFC 9421: Signature-Input, Signature)."
)


@pytest.fixture
def signed_model(developer):
    return developer.create_model(
        "signed",
        "avg_values_if_data",
        initial_model=INITIAL,
        requirement="all_clients",
        allow_aggregation=True,
        client_auth="signed",
    )


class TestSignedModel:
    def test_a_keyed_client_registers_pulls_pushes_and_scores(self, server, developer, signed_model, tmp_path):
        assert signed_model.client_auth == "signed"
        key_file = tmp_path / "client.pem"
        client = WebClient(signed_model.id, url=server.url, key_file=key_file, progress=False)

        client.register()

        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert developer.get_model(signed_model.id).clients == [client_public_id(client.uuid)]
        latest = client.check_for_latest_model()
        assert latest["aggregate"] is None
        np.testing.assert_array_equal(latest["values"][1], np.zeros(2))
        assert client.send_update(UPDATE, num_examples=4)["num_examples"] == 4
        aggregate = wait_for(client.check_for_new_model_aggregate)
        np.testing.assert_allclose(aggregate["result"][0], [1.0, 2.0, 3.0])
        score = client.send_val_results({"accuracy": 0.5}, aggregate["id"])
        assert score["validation_results"] == {"accuracy": 0.5}
        assert [row.validation_results for row in developer.list_scores(aggregate["id"])] == [{"accuracy": 0.5}]
        developer.publish(aggregate["id"], "2.0.0")
        assert client.get_current_artifact()["version"] == "2.0.0"

    def test_uploads_are_signed_and_the_transfer_url_keeps_its_own_signature(self, server, signed_model, tmp_path):
        # Every update goes through the three upload steps: two signed API calls around an unsigned PUT.
        client = WebClient(
            signed_model.id, url=server.url, key_file=tmp_path / "k.pem", progress=False, upload_threshold=0
        )
        client.register()

        sent = client.send_update(UPDATE)

        assert (sent["federated_model"], sent["client"]) == (signed_model.id, client.uuid)

    def test_the_key_file_keeps_the_client_across_runs(self, server, signed_model, tmp_path):
        key_file = tmp_path / "client.pem"
        first = WebClient(signed_model.id, url=server.url, key_file=key_file, progress=False)
        uuid = first.register()

        later = WebClient(signed_model.id, uuid=uuid, url=server.url, key_file=key_file, progress=False)

        assert later.public_key == first.public_key
        assert later.register() == uuid, "a known client re-registers by signing, without sending its key"
        assert later.check_for_latest_model()["aggregate"] is None

    def test_the_same_client_without_its_signature_is_refused_401(self, server, signed_model, tmp_path):
        keyed = WebClient(signed_model.id, url=server.url, key_file=tmp_path / "k.pem", progress=False)
        uuid = keyed.register()
        unsigned = WebClient(signed_model.id, uuid=uuid, url=server.url, progress=False)

        with pytest.raises(Unauthorized) as pulled:
            unsigned.check_for_latest_model()
        with pytest.raises(Unauthorized) as registered:
            unsigned.register()

        assert (pulled.value.status_code, pulled.value.message) == (401, SIGNATURE_REQUIRED)
        assert registered.value.message == SIGNATURE_REQUIRED

    def test_a_client_signing_with_another_key_is_refused_401(self, server, signed_model, tmp_path):
        uuid = WebClient(signed_model.id, url=server.url, key_file=tmp_path / "k.pem", progress=False).register()
        impostor = WebClient(
            signed_model.id, uuid=uuid, url=server.url, private_key=signing.generate_key(), progress=False
        )

        with pytest.raises(Unauthorized) as refused:
            impostor.check_for_latest_model()

        assert refused.value.message == "Invalid signature."

    def test_a_key_registered_for_a_second_new_client_is_a_conflict(self, server, signed_model, tmp_path):
        key_file = tmp_path / "k.pem"
        WebClient(signed_model.id, url=server.url, key_file=key_file, progress=False).register()

        with pytest.raises(Conflict) as refused:
            WebClient(signed_model.id, url=server.url, key_file=key_file, progress=False).register()

        assert refused.value.status_code == 409
        assert "public_key" in refused.value.body

    def test_a_new_client_without_a_key_is_told_to_bring_one(self, server, signed_model):
        with pytest.raises(BadRequest) as refused:
            WebClient(signed_model.id, url=server.url).register()

        assert "public_key" in refused.value.body


def _openssl_signs_ed25519() -> bool:
    """Whether this machine's openssl makes Ed25519 keys and signs raw input (OpenSSL 1.1.1 and later)."""
    if shutil.which("openssl") is None or shutil.which("curl") is None:
        return False
    probe = subprocess.run(["openssl", "pkeyutl", "-help"], capture_output=True, text=True)
    return "-rawin" in probe.stdout + probe.stderr


@pytest.mark.skipif(not _openssl_signs_ed25519(), reason="needs curl and openssl with Ed25519 (-rawin)")
def test_the_documented_curl_and_openssl_client_registers_reads_and_pushes(server, developer, signed_model, tmp_path):
    """``docs/signed-client.sh``, the RFC 9421 client of docs/security.md, run as written against the service."""
    environment = {
        **os.environ,
        "SERVICE_URL": server.url,
        "MODEL_ID": str(signed_model.id),
        "KEY_FILE": str(tmp_path / "client.pem"),
        "UPDATE": "[[1.0, 2.0, 3.0], [4.0, 5.0]]",  # the shapes of the model's weights (INITIAL)
    }
    run = subprocess.run(
        ["bash", str(SIGNED_CLIENT_SCRIPT)], env=environment, capture_output=True, text=True, timeout=60, check=False
    )

    assert run.returncode == 0, run.stdout + run.stderr
    registered, latest, update = (json.loads(line) for line in run.stdout.splitlines() if line.strip())
    assert developer.get_model(signed_model.id).clients == [client_public_id(registered["uuid"])]
    assert latest["aggregate"] is None
    assert (update["federated_model"], update["client"]) == (signed_model.id, registered["uuid"])


class TestUuidModel:
    def test_an_old_style_client_needs_no_key(self, server, developer):
        model = developer.create_model("uuid", "avg_values_if_data", initial_model=INITIAL)
        assert model.client_auth == "uuid"
        client = WebClient(model.id, url=server.url, progress=False)

        uuid = client.register()

        assert client.public_key is None
        assert developer.get_model(model.id).clients == [uuid]
        assert client.check_for_latest_model()["aggregate"] is None
        assert client.send_update(UPDATE)["client"] == uuid

    def test_a_keyed_client_may_sign_there_too(self, server, developer):
        model = developer.create_model("uuid-keyed", "avg_values_if_data", initial_model=INITIAL)
        client = WebClient(model.id, url=server.url, private_key=signing.generate_key(), progress=False)

        client.register()

        assert client.check_for_latest_model()["aggregate"] is None
        assert client.send_update(UPDATE)["federated_model"] == model.id


class TestKeys:
    def test_a_key_file_is_never_overwritten(self, tmp_path):
        key_file = tmp_path / "client.pem"
        key = signing.load_or_create_key(key_file)

        with pytest.raises(FileExistsError):
            signing.save_key(signing.generate_key(), key_file)
        assert signing.public_key_text(signing.load_or_create_key(key_file)) == signing.public_key_text(key)

    def test_a_key_of_another_kind_is_refused(self, tmp_path):
        key_file = tmp_path / "ec.pem"
        key_file.write_bytes(
            generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )

        with pytest.raises(signing.KeyFileError, match="not an Ed25519 private key"):
            WebClient(1, key_file=key_file)

    def test_key_file_or_private_key_not_both(self, tmp_path):
        with pytest.raises(ValueError, match="not both"):
            WebClient(1, key_file=tmp_path / "k.pem", private_key=signing.generate_key())


def _service_checks(headers, public_key_text, method, url, body):
    """Whether ``fma_core.signatures`` (the service's code) accepts the signature of a request to ``url``."""
    try:
        signatures.signature_verify(
            method=method,
            url=url,
            headers=dict(headers).items(),
            body=body or b"",
            key_id=headers["CLIENT-UUID"],
            key_id_rule="the client's uuid",
            public_key=signatures.parse_public_key(public_key_text),
            components=signatures.CLIENT_COMPONENTS,
            now=time.time(),
        )
    except signatures.SignatureError:
        return False
    return True


class TestSigner:
    def test_the_path_below_a_stage_prefix_is_what_is_signed(self):
        key = signing.generate_key()
        request = requests.Request(
            "POST",
            "https://api.example/Prod/api/v1/model_updates/",
            params={"b": "x y", "a": "/"},
            json={"data": [1.0]},
            headers={"CLIENT-UUID": "0b7e1c7a-3f52-4c1e-9a0e-2d4f5e6a7b8c"},
        ).prepare()

        signing.RequestSigner(key, "https://api.example/Prod/")(request)

        public = signing.public_key_text(key)
        query = request.url.split("?", 1)[1]
        seen = f"https://api.example/api/v1/model_updates/?{query}"
        assert _service_checks(request.headers, public, "POST", seen, request.body)
        with_stage = f"https://api.example/Prod/api/v1/model_updates/?{query}"
        assert not _service_checks(request.headers, public, "POST", with_stage, request.body)

    def test_the_path_is_sent_as_signed_and_a_default_port_is_left_out(self):
        key = signing.generate_key()
        request = requests.Request(
            "GET", "http://api.example:80/api/v1/models/1%2C2/", headers={"CLIENT-UUID": "x" * 36}
        ).prepare()

        signing.RequestSigner(key, "http://api.example:80/")(request)

        assert request.url == "http://api.example:80/api/v1/models/1,2/"
        url = signatures.target_uri(scheme="http", authority="api.example", path="/api/v1/models/1,2/", query="")
        assert _service_checks(request.headers, signing.public_key_text(key), "GET", url, b"")


class _Recorder(BaseHTTPRequestHandler):
    """Answers 503 to the first request, then 200 ``[]``; keeps each request's path and headers."""

    seen: list = []

    def do_GET(self):
        self.seen.append((self.path, dict(self.headers)))
        status = 503 if len(self.seen) == 1 else 200
        body = b"[]" if status == 200 else json.dumps({"detail": "busy"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_retry_is_signed_afresh_so_the_service_does_not_take_it_for_a_replay():
    _Recorder.seen = []
    key = signing.generate_key()
    with serving(_Recorder) as service:
        client = WebClient(
            1,
            uuid="00000000-0000-4000-8000-000000000001",
            url=f"http://127.0.0.1:{service.server_port}/",
            private_key=key,
            retry=RetryPolicy(attempts=2, sleep=lambda seconds: None),
        )
        assert client.check_for_new_model_aggregate() is None

    (first_path, first), (retry_path, retry) = _Recorder.seen[:2]
    assert first_path == retry_path
    assert first["Signature-Input"] != retry["Signature-Input"], "a fresh nonce (and created) for the retry"
    url = f"http://127.0.0.1:{service.server_port}{retry_path}"
    for headers in (first, retry):
        assert headers["CLIENT-UUID"] == client.uuid
        assert _service_checks(headers, signing.public_key_text(key), "GET", url, b"")
