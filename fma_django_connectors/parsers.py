"""JSON request bodies parsed once, with orjson, and never past ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

from __future__ import annotations

from typing import IO, Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from fma_django_connectors.exceptions import RequestBodyTooLarge


class ORJSONParser(BaseParser):
    """Parses ``application/json``; an over-large body is a 413, malformed JSON a 400 naming the error."""

    media_type = "application/json"

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None:
            body = stream.read()
        else:
            # One byte past the limit tells an over-large body apart without trusting Content-Length.
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise RequestBodyTooLarge()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ParseError(f"JSON parse error - {error}") from error
