"""JSON Schemas that models set for the documents clients send (``update_schema``, ``client_agg_results_schema``)."""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing.exceptions import Unresolvable

from fma_django_connectors.exceptions import SchemaMismatchError


def check_document(document: Any, schema: Any, *, field: str) -> None:
    """Raise ``SchemaMismatchError`` (400 ``{field: "<field> did not match the required schema: ..."}``)."""
    if schema is None:
        return
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as error:
        raise SchemaMismatchError(f"{field} did not match the required schema: {error.message}", field=field) from None
    except jsonschema.SchemaError as error:
        # The API refuses such schemas, but the admin (or the database) can hold anything.
        message = f"the model's schema for {field} cannot be used: not a valid JSON Schema: {error.message}"
        raise SchemaMismatchError(message, field=field) from None
    except Unresolvable as error:
        raise SchemaMismatchError(f"the model's schema for {field} cannot be used: {error}", field=field) from None
