"""JSON rendering with orjson, numpy arrays included (stored weights render without a detour through lists)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from django.utils.encoding import force_str
from django.utils.functional import Promise
from rest_framework.renderers import BaseRenderer

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    # orjson hands back what it cannot write natively: lazy translations (DRF's default messages)
    # and numpy arrays that are not C-contiguous.
    if isinstance(value, Promise):
        return force_str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ORJSONRenderer(BaseRenderer):
    """Renders response data as UTF-8 JSON."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=_OPTIONS)
