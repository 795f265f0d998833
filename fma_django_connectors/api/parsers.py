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
            raise ParseError(f"JSON parse error - {_explain(error)}") from error


def _explain(error: orjson.JSONDecodeError) -> str:
    # Python's json module writes NaN and Infinity, which JSON does not allow: say so rather than
    # only "unexpected character".
    at = error.pos - 1 if error.msg == "no digit after sign" else error.pos
    if error.doc[at:].startswith(("NaN", "Infinity", "-Infinity")):
        column = error.colno - (error.pos - at)
        return f"NaN and Infinity are not valid JSON numbers: line {error.lineno} column {column} (char {at})"
    return str(error)
