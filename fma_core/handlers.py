"""Registry of Lambda handlers that serve HTTP events; ``API_SERVICE_SETTINGS["handler"]`` picks one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fma_core.registry import Registry

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

handlers: Registry[LambdaHandler] = Registry("handler")
