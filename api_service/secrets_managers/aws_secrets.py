"""Secrets from AWS Secrets Manager, through boto3 or the AWS Parameters and Secrets Lambda extension.

A secret id is looked up, in this order:

1. an environment variable of the same name (local work, tests): it always wins and is never cached;
2. this process's cache, while the value is younger than ``cache_ttl_seconds`` (the setting
   ``FMA_SECRETS_CACHE_TTL``, default 300, which ``settings_base`` gives), so a warm Lambda container does not
   ask again on every request;
3. inside Lambda with the extension layer enabled (``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` set), the
   extension on ``localhost``; anywhere else ``secretsmanager:GetSecretValue`` through boto3.

JSON objects and lists (the RDS credentials form) are decoded. No value is ever logged or put in an error.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from fma_core.aws import aws_client

from .base import SecretUnavailableError, SecretValue, decode_secret, secrets_managers

# Seconds a value is kept: ``settings_base`` sets the deployment's FMA_SECRETS_CACHE_TTL at start; until then
# nothing is kept.
cache_ttl_seconds = 0.0
# The extension answers from its own cache or one Secrets Manager call; longer means it is not there.
EXTENSION_TIMEOUT_SECONDS = 5.0

_cache: dict[str, tuple[float, SecretValue]] = {}


@secrets_managers.register("aws_secrets")
def get_secret(secret_id: str, *, fresh: bool = False) -> SecretValue:
    """The secret ``secret_id``: text, or the decoded JSON object/list it holds; bytes for a binary secret.

    ``fresh``: ask the manager even if the cache holds a value (the value was found out of date).
    """
    # The environment is read here, outside the settings modules, because reading it is this manager's job: a
    # secret may come from a variable named like it, and the Lambda runtime's variables say how to reach the
    # extension. FMA's own settings never come from here.
    if secret_id in os.environ:
        return decode_secret(os.environ[secret_id])
    now = time.monotonic()
    cached = _cache.get(secret_id)
    if not fresh and cached is not None and now - cached[0] < cache_ttl_seconds:
        return cached[1]
    port = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
    if port and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        value = _value_of(_read_through_extension(secret_id, port), base64_binary=True)
    else:
        value = _value_of(_read_through_api(secret_id), base64_binary=False)
    _cache[secret_id] = (now, value)
    return value


def clear_cache() -> None:
    """Forget every cached value, so the next read asks the manager again (e.g. after a rotation)."""
    _cache.clear()


def _read_through_api(secret_id: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return aws_client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code == "ResourceNotFoundException":
            raise SecretUnavailableError(f"Secret {secret_id!r} does not exist in AWS Secrets Manager") from exc
        raise SecretUnavailableError(
            f"Secret {secret_id!r} could not be read from AWS Secrets Manager: {code}"
        ) from exc
    except BotoCoreError as exc:
        raise SecretUnavailableError(
            f"Secret {secret_id!r} could not be read: AWS Secrets Manager is unreachable ({exc}); "
            "check the network route to it (VPC endpoint or NAT)"
        ) from exc


def _read_through_extension(secret_id: str, port: str) -> dict[str, Any]:
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_lambda.html
    request = urllib.request.Request(
        f"http://localhost:{port}/secretsmanager/get?secretId={quote(secret_id, safe='')}",
        headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")},
    )
    # The extension is always local: an HTTP(S)_PROXY from the environment must not capture the call.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=EXTENSION_TIMEOUT_SECONDS) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise SecretUnavailableError(
            f"Secret {secret_id!r} could not be read through the Parameters and Secrets Lambda extension: "
            f"HTTP {exc.code}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise SecretUnavailableError(
            f"Secret {secret_id!r} could not be read: the Parameters and Secrets Lambda extension on "
            f"localhost:{port} is unreachable ({type(exc).__name__})"
        ) from exc


def _value_of(response: dict[str, Any], *, base64_binary: bool) -> SecretValue:
    # GetSecretValue and the extension answer alike, except that the extension sends binary as base64.
    if response.get("SecretString") is not None:
        return decode_secret(response["SecretString"])
    binary = response["SecretBinary"]
    return base64.b64decode(binary) if base64_binary else binary
