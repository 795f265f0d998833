"""JSON Schemas that models set for the documents clients send (``update_schema``, ``client_agg_results_schema``).

A developer writes the schema; the documents it checks come from clients. So a check may neither reach out
nor run long, whoever wrote either:

- **nothing is fetched.** Documents are validated with a ``referencing.Registry`` that retrieves nothing (the
  validator's default fetches any ``http(s)`` ``$ref``, a request to wherever the schema points, whose
  answer would then show in the 400), and a schema whose ``$ref`` is not local (``#...``) is refused when it
  is set (:func:`schema_problem`);
- **patterns run on RE2**, whose matching time is linear in the text (Python's ``re`` backtracks: ``^(a|a)*$``
  doubles its time with each character). The ``pattern``, ``patternProperties`` and ``additionalProperties``
  keywords are jsonschema's own with RE2 in place of ``re``; a pattern RE2 cannot compile (backreferences,
  lookaround) is refused when the schema is set, as is a schema with both ``unevaluatedProperties`` and
  ``patternProperties`` (jsonschema matches those keys with ``re`` in a helper that no keyword replaces).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jsonschema
import re2
import referencing.jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from fma_django_connectors.exceptions import SchemaMismatchError

__all__ = ["NO_RETRIEVAL", "RE2_KEYWORDS", "check_document", "schema_problem", "validator_class_for"]

# Keywords whose values are references to other schemas (2020-12, 2019-09).
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# RE2's own errors go to the exception, not to standard error.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _retrieve_nothing(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


# The registry documents are validated with: the draft metaschemas (jsonschema adds them), nothing retrieved.
NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_retrieve_nothing)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    """The RE2 program of ``pattern`` (``re2.error`` if RE2 cannot run it), compiled once per process."""
    return re2.compile(pattern, _RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


# jsonschema's keywords with RE2 in place of ``re`` (``jsonschema/_keywords.py``; its messages kept word for word).
def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = {
        key for key in instance if key not in properties and not any(_search(pattern, key) for pattern in patterns)
    }
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            unexpected = ", ".join(repr(each) for each in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({unexpected} {verb} unexpected)")


RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@functools.cache
def _with_re2(validator_class: Any) -> Any:
    """``validator_class`` (one per draft) with its pattern keywords on RE2."""
    return jsonschema.validators.extend(validator_class, validators=RE2_KEYWORDS)


def _draft(schema: Any) -> Any:
    """The validator class of the draft ``schema`` names in ``$schema``; the latest for any other value.

    ``validator_for`` itself fails on a ``$schema`` that is not a string, and warns on an unknown one.
    """
    latest = jsonschema.Draft202012Validator
    if not isinstance(schema, dict) or not isinstance(schema.get("$schema", ""), str):
        return latest
    return jsonschema.validators.validator_for(schema, default=latest)


def validator_class_for(schema: Any) -> Any:
    """The validator class that checks documents against ``schema``: its draft's, patterns on RE2."""
    return _with_re2(_draft(schema))


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object within ``schema``, found by its draft's keywords (so ``const`` values are skipped)."""
    pending = [Resource.from_contents(schema, default_specification=referencing.jsonschema.DRAFT202012)]
    while pending:
        resource = pending.pop()
        if isinstance(resource.contents, dict):
            yield resource.contents
        pending.extend(resource.subresources())


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot check clients' documents, or None when it can (None itself: no schema)."""
    if schema is None:
        return None
    draft = _draft(schema)
    try:
        draft.check_schema(schema)
    except jsonschema.SchemaError as error:
        return f"not a valid JSON Schema: {error.message}"
    keywords_used: set[str] = set()
    for subschema in _subschemas(schema):
        keywords_used.update(subschema)
        for keyword in _REFERENCE_KEYWORDS:
            reference = subschema.get(keyword)
            if isinstance(reference, str) and not reference.startswith("#"):
                return (
                    f"{keyword} {reference!r} is not local: a schema may refer only within itself (#...), "
                    "nothing is fetched"
                )
        patterns = list(subschema.get("patternProperties", {}))
        if isinstance(subschema.get("pattern"), str):
            patterns.append(subschema["pattern"])
        for pattern in patterns:
            try:
                _compiled(pattern)
            except re2.error as error:
                reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
                return (
                    f"the pattern {pattern!r} cannot run in linear time (RE2: {reason}); backreferences and "
                    "lookaround are not supported"
                )
    if {"patternProperties", "unevaluatedProperties"} <= keywords_used:
        return "patternProperties and unevaluatedProperties in one schema are not supported: use additionalProperties"
    return None


def check_document(document: Any, schema: Any, *, field: str) -> None:
    """Raise ``SchemaMismatchError`` (400 ``{field: "<field> did not match the required schema: ..."}``)."""
    if schema is None:
        return
    # The API refuses unusable schemas, but the admin (or the database) can hold anything.
    problem = schema_problem(schema)
    if problem is not None:
        raise SchemaMismatchError(f"the model's schema for {field} cannot be used: {problem}", field=field)
    validator = validator_class_for(schema)(schema, registry=NO_RETRIEVAL)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    except Unresolvable as unresolvable:
        raise SchemaMismatchError(
            f"the model's schema for {field} cannot be used: {unresolvable}", field=field
        ) from None
    if error is not None:
        raise SchemaMismatchError(f"{field} did not match the required schema: {error.message}", field=field)
