"""What every secrets manager shares: the registry it joins, its error and the decoding of values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fma_core.exceptions import ConfigurationError
from fma_core.registry import Registry

# A secret as the code sees it: a JSON object or list when the stored text is one, else the text itself.
SecretValue = Any
GetSecret = Callable[[str], SecretValue]

secrets_managers: Registry[GetSecret] = Registry("secrets manager")


class SecretUnavailableError(ConfigurationError):
    """A secret could not be read. The message names the secret id and never carries its value."""


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
