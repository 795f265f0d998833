"""What every secrets manager shares: the registry it joins, its error and the decoding of values."""

from __future__ import annotations

import json
from typing import Any, Protocol

from fma_core.exceptions import ServiceUnavailableError
from fma_core.registry import Registry

# A secret as the code sees it: a JSON object or list when the stored text is one, else the text itself.
SecretValue = Any


class GetSecret(Protocol):
    """A manager's reader: ``get_secret(secret_id)``; ``fresh=True`` bypasses any cache (after a rotation)."""

    def __call__(self, secret_id: str, *, fresh: bool = False) -> SecretValue: ...


secrets_managers: Registry[GetSecret] = Registry("secrets manager")


class SecretUnavailableError(ServiceUnavailableError):
    """A secret could not be read (missing, refused, unreachable). The message names the secret id and the
    service, never the value."""


def decode_secret(text: str) -> SecretValue:
    """``text`` as a JSON object or list when it is one (RDS credentials are), else unchanged.

    Only containers are decoded: a random key such as ``"1234"`` or ``"true"`` must stay a string.
    """
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text
