"""``fma_core.signatures``: what is signed, and that only the right key, message and encoding verify."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fma_core import signatures
from fma_core.signatures import InvalidPublicKeyError


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def _message(headers, *, method="POST", target="/api/v1/model_updates/", body=b"{}"):
    return signatures.canonical_message(
        method=method,
        target=target,
        timestamp=headers["FMA-Timestamp"],
        nonce=headers["FMA-Nonce"],
        body=body,
    )


def test_the_canonical_message():
    message = signatures.canonical_message(
        method="get", target="/api/v1/models/", timestamp="1700000000", nonce="n" * 16, body=b""
    )
    assert message == (
        b"FMA-SIG-V1\nGET\n/api/v1/models/\n1700000000\nnnnnnnnnnnnnnnnn\n"
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/a/", "", "/a/"),
        ("/a/", "b=2&a=1", "/a/?a=1&b=2"),
        ("/a/", "q=x+y&q=%20z", "/a/?q=%20z&q=x%20y"),
        # A path signed as sent and the same path as the service reads it (decoded) sign alike.
        ("/api/v1/models/a%2Cb/", "", "/api/v1/models/a%2Cb/"),
        ("/api/v1/models/a,b/", "", "/api/v1/models/a%2Cb/"),
        ("/api/v1/models/é/", "", "/api/v1/models/%C3%A9/"),
    ],
)
def test_the_canonical_target_sorts_and_encodes_one_way(path, query, expected):
    assert signatures.canonical_target(path, query) == expected


def test_a_signature_verifies_with_its_key_only(key):
    headers = signatures.sign_request(key, method="POST", path="/api/v1/model_updates/", body=b"{}")
    public = base64.b64decode(signatures.public_key_text(key))
    assert signatures.signature_valid(public, headers["FMA-Signature"], _message(headers))
    assert not signatures.signature_valid(public, headers["FMA-Signature"], _message(headers, body=b"[]"))
    assert not signatures.signature_valid(public, headers["FMA-Signature"], _message(headers, method="PUT"))
    other = base64.b64decode(signatures.public_key_text(Ed25519PrivateKey.generate()))
    assert not signatures.signature_valid(other, headers["FMA-Signature"], _message(headers))
    assert not signatures.signature_valid(public, "not base64!", _message(headers))


def test_nonces_are_fresh_and_well_formed(key):
    first, second = (signatures.sign_request(key, method="GET", path="/") for _ in range(2))
    assert first["FMA-Nonce"] != second["FMA-Nonce"]
    assert signatures.NONCE_PATTERN.fullmatch(first["FMA-Nonce"])


def test_a_public_key_round_trips(key):
    text = signatures.public_key_text(key)
    assert signatures.parse_public_key(text) == base64.b64decode(text)


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
