"""``fma_core.signatures``: RFC 9421 signatures as the service checks them, against what an RFC 9421 signer makes."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from fma_client import signing
from fma_core import signatures
from fma_core.signatures import InvalidPublicKeyError, SignatureError

URL = "https://api.example/api/v1/model_updates/?federated_model=3&page=2"
UUID = "0b7e1c7a-3f52-4c1e-9a0e-2d4f5e6a7b8c"
BODY = json.dumps({"federated_model": 3, "data": [1.0]}).encode()


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def _raw(key) -> bytes:
    return base64.b64decode(signing.public_key_text(key))


def _signed(key, *, url=URL, body=BODY, **options):
    headers = {"CLIENT-UUID": UUID}
    signing.sign(key, method="POST", url=url, headers=headers, body=body, key_id=UUID, **options)
    return headers


def _verify(headers, key, *, url=URL, body=BODY, method="POST", now=None, key_id=UUID):
    return signatures.signature_verify(
        method=method,
        url=url,
        headers=headers.items(),
        body=body,
        key_id=key_id,
        key_id_rule="the client's uuid",
        public_key=_raw(key),
        components=signatures.CLIENT_COMPONENTS,
        now=time.time() if now is None else now,
    )


def test_a_signature_verifies_with_its_key_and_request_only(key):
    headers = _signed(key)
    verified = _verify(headers, key)
    assert (verified.key_id, verified.nonce) == (UUID, headers["Signature-Input"].split('nonce="')[1].split('"')[0])
    assert verified.expires == verified.created + signatures.MAX_SKEW_SECONDS
    for changed in (
        {"method": "PUT"},
        {"url": URL.replace("page=2", "page=3")},
        {"url": URL.replace("api.example", "other.example")},
    ):
        with pytest.raises(SignatureError, match="Invalid signature"):
            _verify(headers, key, **changed)
    with pytest.raises(SignatureError, match="Invalid signature"):
        _verify(headers, Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="Content-Digest"):
        _verify(headers, key, body=BODY + b" ")


class _Message:
    """A request as the library signs it."""

    def __init__(self, method):
        self.method, self.url, self.headers = method, URL, {"Client-UUID": UUID}


def _library_signed(key, method, **options):
    """The headers of a request signed with ``http-message-signatures`` directly, as any RFC 9421 client would."""
    message = _Message(method)
    HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={UUID: key}),
    ).sign(message, key_id=UUID, nonce="a-nonce-of-sixteen-or-more", **options)
    return message.headers


def test_the_service_checks_what_any_rfc_9421_signer_makes(key):
    """Another label, components in another order: the service checks the standard, not one client's habits."""
    headers = _library_signed(
        key, "POST", label="sig1", covered_component_ids=("client-uuid", "@target-uri", "@method"), body=BODY
    )
    assert _verify(headers, key).nonce == "a-nonce-of-sixteen-or-more"


def test_no_signature_headers_is_no_signature(key):
    assert _verify({"CLIENT-UUID": UUID}, key) is None


@pytest.mark.parametrize("offset", [-signatures.MAX_SKEW_SECONDS - 1, signatures.MAX_SKEW_SECONDS + 1])
def test_created_must_be_within_the_window(key, offset):
    headers = _signed(key, created=int(time.time()) + offset)
    with pytest.raises(SignatureError, match="within 300 seconds"):
        _verify(headers, key)


def test_an_expired_signature_is_refused(key):
    expired = datetime.now(UTC) - timedelta(seconds=1)
    headers = _library_signed(key, "GET", expires=expired, covered_component_ids=signatures.CLIENT_COMPONENTS)
    with pytest.raises(SignatureError, match="within 300 seconds"):
        _verify(headers, key, method="GET", body=b"")


def test_the_keyid_must_name_the_expected_signer(key):
    with pytest.raises(SignatureError, match="keyid must be the client's uuid"):
        _verify(_signed(key), key, key_id="another")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (("/api/v1/models/", ""), "https://h/api/v1/models/"),
        (("/api/v1/models/", "b=2&a=1&a=0"), "https://h/api/v1/models/?b=2&a=1&a=0"),
        (("/api/v1/models/1,2/", ""), "https://h/api/v1/models/1,2/"),
        (("/api/v1/models/é x/", "q=%20"), "https://h/api/v1/models/%C3%A9%20x/?q=%20"),
    ],
)
def test_the_target_uri_keeps_the_query_as_sent_and_encodes_the_path_once(target, expected):
    path, query = target
    assert signatures.target_uri(scheme="https", authority="h", path=path, query=query) == expected


def test_the_sdk_sends_a_path_encoded_as_the_service_rebuilds_it():
    # The service reads paths decoded; the SDK sends (and signs) them encoded the one way the service encodes.
    sent = signing.canonical_path("/api/v1/models/1%2C2/%C3%A9 x/")
    assert sent == "/api/v1/models/1,2/%C3%A9%20x/"
    assert signatures.target_uri(scheme="http", authority="h", path="/api/v1/models/1,2/é x/", query="").endswith(sent)


def test_a_public_key_round_trips(key):
    text = signing.public_key_text(key)
    assert signatures.public_key_text(signatures.parse_public_key(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("***", "public_key must be base64 of the 32-byte raw Ed25519 public key"),
        (base64.b64encode(b"x" * 31).decode(), "public_key must be 32 bytes (raw Ed25519), not 31"),
    ],
)
def test_a_malformed_public_key_is_a_caller_error(text, message):
    with pytest.raises(InvalidPublicKeyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        signatures.parse_public_key(text)
