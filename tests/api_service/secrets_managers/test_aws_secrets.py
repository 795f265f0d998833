"""``aws_secrets``: Secrets Manager through boto3 (moto) and through the Lambda extension (a real local HTTP server)."""

import json
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from secrets_managers import SecretUnavailableError, aws_secrets
from secrets_managers.aws_secrets import get_secret
from tests.servers import serving

DB_CREDENTIALS = {"username": "fma", "password": "s3cr3t-pa55word"}


@pytest.fixture
def secretsmanager():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


class TestSecretsManagerApi:
    def test_plain_text_secret(self, secretsmanager):
        secretsmanager.create_secret(Name="fma/secret-key", SecretString="a-plain-key")

        assert get_secret("fma/secret-key") == "a-plain-key"

    def test_json_secret_is_decoded(self, secretsmanager):
        secretsmanager.create_secret(Name="fma/db", SecretString=json.dumps(DB_CREDENTIALS))

        assert get_secret("fma/db") == DB_CREDENTIALS

    def test_text_that_looks_like_a_json_scalar_stays_text(self, secretsmanager):
        secretsmanager.create_secret(Name="numeric", SecretString="12345")

        assert get_secret("numeric") == "12345"

    def test_binary_secret(self, secretsmanager):
        secretsmanager.create_secret(Name="blob", SecretBinary=b"\x00\x01binary")

        assert get_secret("blob") == b"\x00\x01binary"

    def test_missing_secret_names_its_id(self, secretsmanager):
        with pytest.raises(SecretUnavailableError, match=r"Secret 'fma/absent' does not exist in AWS Secrets Manager"):
            get_secret("fma/absent")

    def test_unreachable_manager_names_the_secret(self, monkeypatch, unused_port):
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port}")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

        with pytest.raises(SecretUnavailableError, match=r"Secret 'fma/db' could not be read: .*unreachable"):
            get_secret("fma/db")

    def test_value_is_cached_for_the_ttl(self, secretsmanager):
        secretsmanager.create_secret(Name="rotating", SecretString="first")
        assert get_secret("rotating") == "first"

        secretsmanager.put_secret_value(SecretId="rotating", SecretString="second")

        assert get_secret("rotating") == "first"

    def test_a_fresh_read_bypasses_the_cache_of_that_secret_only(self, secretsmanager):
        secretsmanager.create_secret(Name="fma/db", SecretString="first")
        secretsmanager.create_secret(Name="fma/other", SecretString="first")
        assert [get_secret("fma/db"), get_secret("fma/other")] == ["first", "first"]
        for name in ("fma/db", "fma/other"):
            secretsmanager.put_secret_value(SecretId=name, SecretString="second")

        assert get_secret("fma/db", fresh=True) == "second"
        assert get_secret("fma/db") == "second"
        assert get_secret("fma/other") == "first"

    def test_value_is_read_again_after_the_ttl(self, secretsmanager, monkeypatch):
        monkeypatch.setattr(aws_secrets, "cache_ttl_seconds", 0.2)
        secretsmanager.create_secret(Name="rotating", SecretString="first")
        assert get_secret("rotating") == "first"
        secretsmanager.put_secret_value(SecretId="rotating", SecretString="second")

        time.sleep(0.3)

        assert get_secret("rotating") == "second"


class TestEnvironmentOverride:
    def test_variable_named_like_the_secret_wins(self, secretsmanager, monkeypatch):
        secretsmanager.create_secret(Name="FMA_DB", SecretString=json.dumps(DB_CREDENTIALS))
        monkeypatch.setenv("FMA_DB", '{"username": "local", "password": "local"}')

        assert get_secret("FMA_DB") == {"username": "local", "password": "local"}

    def test_needs_no_aws_at_all(self, monkeypatch, unused_port):
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port}")
        monkeypatch.setenv("FMA_LOCAL_KEY", "from-the-environment")

        assert get_secret("FMA_LOCAL_KEY") == "from-the-environment"


class FakeExtension(BaseHTTPRequestHandler):
    """Answers like the AWS Parameters and Secrets Lambda extension: GetSecretValue's JSON, or an HTTP error."""

    secrets: dict[str, dict] = {}
    requests: list[dict] = []

    def do_GET(self):
        url = urlsplit(self.path)
        secret_id = parse_qs(url.query).get("secretId", [""])[0]
        self.requests.append(
            {"path": url.path, "secret_id": secret_id, "token": self.headers.get("X-Aws-Parameters-Secrets-Token")}
        )
        if url.path != "/secretsmanager/get" or secret_id not in self.secrets:
            self._reply(400, {"message": "Secrets Manager can't find the specified secret."})
        else:
            self._reply(200, {"Name": secret_id, **self.secrets[secret_id]})

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def extension(monkeypatch):
    FakeExtension.secrets = {}
    FakeExtension.requests = []
    with serving(FakeExtension) as server:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fma-api")
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.server_address[1]))
        monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-of-the-function")
        # Nothing may go to Secrets Manager itself on this path.
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        yield FakeExtension


class TestLambdaExtension:
    def test_reads_through_the_extension_with_the_session_token(self, extension):
        extension.secrets["fma/db credentials"] = {"SecretString": json.dumps(DB_CREDENTIALS)}

        assert get_secret("fma/db credentials") == DB_CREDENTIALS
        assert extension.requests == [
            {"path": "/secretsmanager/get", "secret_id": "fma/db credentials", "token": "session-token-of-the-function"}
        ]

    def test_binary_secret_arrives_base64_encoded(self, extension):
        extension.secrets["blob"] = {"SecretBinary": "AAFiaW5hcnk="}

        assert get_secret("blob") == b"\x00\x01binary"

    def test_cached_across_warm_invocations(self, extension):
        extension.secrets["key"] = {"SecretString": "k"}

        assert [get_secret("key") for _ in range(3)] == ["k", "k", "k"]
        assert len(extension.requests) == 1

    def test_no_cache_with_a_zero_ttl(self, extension, monkeypatch):
        monkeypatch.setattr(aws_secrets, "cache_ttl_seconds", 0.0)
        extension.secrets["key"] = {"SecretString": "k"}

        get_secret("key")
        get_secret("key")

        assert len(extension.requests) == 2

    def test_missing_secret_names_its_id(self, extension):
        with pytest.raises(
            SecretUnavailableError,
            match=r"Secret 'fma/absent' could not be read through the Parameters and Secrets Lambda extension: "
            r"HTTP 400",
        ):
            get_secret("fma/absent")

    def test_unreachable_extension_names_the_secret(self, monkeypatch, unused_port):
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fma-api")
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(unused_port))

        with pytest.raises(SecretUnavailableError, match=rf"Secret 'fma/db'.*extension on localhost:{unused_port}"):
            get_secret("fma/db")

    def test_a_fresh_read_asks_secrets_manager_not_the_extensions_cache(self, secretsmanager, extension, monkeypatch):
        # After a rotation the extension's cache still holds the old password; Secrets Manager has the new one.
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        extension.secrets["fma/db"] = {"SecretString": json.dumps(DB_CREDENTIALS)}
        rotated = {**DB_CREDENTIALS, "password": "rotated-pa55word"}
        secretsmanager.create_secret(Name="fma/db", SecretString=json.dumps(rotated))
        assert get_secret("fma/db") == DB_CREDENTIALS

        assert get_secret("fma/db", fresh=True) == rotated
        assert len(extension.requests) == 1
        # The fresh value is the one cached for the reads that follow.
        assert get_secret("fma/db") == rotated

    def test_outside_lambda_the_extension_port_alone_is_ignored(self, secretsmanager, extension, monkeypatch):
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        secretsmanager.create_secret(Name="key", SecretString="from-secrets-manager")

        assert get_secret("key") == "from-secrets-manager"
        assert extension.requests == []
