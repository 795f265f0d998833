"""Registries of aggregators and requirements, and the checking of the arguments a model stores for them.

An algorithm declares its arguments as keyword-only parameters; the annotation gives the type and, through
``Annotated[..., Range(...)]``, the allowed values. Arguments come from model JSON: ``aggregator_args`` is an
object or null, ``requirement_args`` an object, a list (positional, in declaration order), one number (the first
positional argument) or null.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from fma_core.exceptions import InvalidArgumentsError
from fma_core.registry import Registry
from fma_core.types import AggregationContext, AggregationResult, Aggregator, PendingSummary, Requirement, UpdateStream

aggregators: Registry[Aggregator] = Registry("aggregator")
requirements: Registry[Requirement] = Registry("requirement")

# Keyword-only parameters the workflow supplies itself, never the model's arguments.
_CALLER_SUPPLIED = frozenset({"context"})


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric argument, used as ``Annotated[float, Range(low=0, high=0.5, high_open=True)]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The interval in words, e.g. ``at least 0 and less than 0.5``."""
        bounds = []
        if self.low is not None:
            bounds.append(f"{'greater than' if self.low_open else 'at least'} {self.low:g}")
        if self.high is not None:
            bounds.append(f"{'less than' if self.high_open else 'at most'} {self.high:g}")
        return " and ".join(bounds)


@dataclass(frozen=True)
class _Parameter:
    name: str
    kind: type
    nullable: bool
    range: Range | None
    required: bool


_KIND_WORDS = {int: "an integer", float: "a number"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


@cache
def _parameters(function: Callable[..., Any]) -> tuple[_Parameter, ...]:
    hints = typing.get_type_hints(function, include_extras=True)
    parameters = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or parameter.name in _CALLER_SUPPLIED:
            continue
        hint = hints[parameter.name]
        limits = None
        if typing.get_origin(hint) is typing.Annotated:
            hint, *metadata = typing.get_args(hint)
            limits = next((item for item in metadata if isinstance(item, Range)), None)
        nullable = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        if nullable:
            (hint,) = (member for member in typing.get_args(hint) if member is not type(None))
        if hint not in _KIND_WORDS:
            raise TypeError(f"argument {parameter.name!r} of {function.__name__} must be annotated int or float")
        parameters.append(
            _Parameter(
                name=parameter.name,
                kind=hint,
                nullable=nullable,
                range=limits,
                required=parameter.default is inspect.Parameter.empty,
            )
        )
    return tuple(parameters)


def _checked_value(name: str, parameter: _Parameter, value: Any) -> Any:
    if value is None and parameter.nullable:
        return None
    accepted = (int,) if parameter.kind is int else (int, float)
    if not isinstance(value, accepted) or isinstance(value, bool):
        null = " or null" if parameter.nullable else ""
        raise InvalidArgumentsError(
            f"argument {parameter.name!r} of {name} must be {_KIND_WORDS[parameter.kind]}{null}, "
            f"got {_json_type(value)} ({value!r})"
        )
    if parameter.range is not None and value not in parameter.range:
        raise InvalidArgumentsError(
            f"argument {parameter.name!r} of {name} must be {parameter.range.describe()}, got {value!r}"
        )
    if parameter.kind is int:
        return value
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidArgumentsError(f"argument {parameter.name!r} of {name} must be a finite number, got {value!r}")
    return number


def _bind(name: str, function: Callable[..., Any], args: Any, *, field: str, positional: bool) -> dict[str, Any]:
    parameters = _parameters(function)
    by_name = {parameter.name: parameter for parameter in parameters}
    if positional and isinstance(args, int | float) and not isinstance(args, bool):
        # A lone number (upstream's ``"requirement_args": "3"``) is the first positional argument.
        args = [args]
    if args is None:
        keywords: Mapping[str, Any] = {}
    elif isinstance(args, Mapping):
        keywords = args
    elif positional and isinstance(args, list | tuple):
        if len(args) > len(parameters):
            if not parameters:
                raise InvalidArgumentsError(f"{name} takes no arguments, got {list(args)!r}")
            accepted = ", ".join(parameter.name for parameter in parameters)
            noun = "argument" if len(parameters) == 1 else "arguments"
            raise InvalidArgumentsError(
                f"{name} takes at most {len(parameters)} positional {noun} ({accepted}), got {len(args)}"
            )
        keywords = {parameter.name: value for parameter, value in zip(parameters, args, strict=False)}
    else:
        shapes = (
            "a JSON list of positional arguments, a JSON object of keyword arguments"
            if positional
            else ("a JSON object of keyword arguments")
        )
        raise InvalidArgumentsError(f"{field} of {name} must be {shapes} or null, got {_json_type(args)}")
    unknown = sorted(str(key) for key in keywords if key not in by_name)
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        if not parameters:
            raise InvalidArgumentsError(f"{name} takes no arguments, got {listed}")
        accepted = ", ".join(parameter.name for parameter in parameters)
        noun = "argument" if len(unknown) == 1 else "arguments"
        raise InvalidArgumentsError(f"{name} does not take {noun} {listed}; it takes {accepted}")
    missing = [parameter.name for parameter in parameters if parameter.required and parameter.name not in keywords]
    if missing:
        noun = "argument" if len(missing) == 1 else "arguments"
        raise InvalidArgumentsError(f"{name} needs {noun} {', '.join(repr(key) for key in missing)} in {field}")
    return {key: _checked_value(name, by_name[key], value) for key, value in keywords.items()}


def validate_aggregator_args(name: str, args: Mapping[str, Any] | None) -> None:
    """Check a model's ``aggregator`` name and ``aggregator_args``.

    Raises
    ------
    ConfigurationError
        No aggregator is registered as ``name``; the message lists the registered ones.
    InvalidArgumentsError
        The arguments are not an object or null, name an argument the aggregator does not take, lack a
        required one, or hold a value of the wrong type or out of range.
    """
    _bind(name, aggregators.get(name), args, field="aggregator_args", positional=False)


def validate_requirement_args(name: str, args: Mapping[str, Any] | Sequence[Any] | None) -> None:
    """Check a model's ``requirement`` name and ``requirement_args`` (object, positional list, one number or null).

    Raises
    ------
    ConfigurationError
        No requirement is registered as ``name``; the message lists the registered ones.
    InvalidArgumentsError
        As for ``validate_aggregator_args``, or more positional arguments than the requirement takes.
    """
    _bind(name, requirements.get(name), args, field="requirement_args", positional=True)


def call_aggregator(
    name: str, updates: UpdateStream, context: AggregationContext, args: Mapping[str, Any] | None
) -> AggregationResult:
    """Run the aggregator registered as ``name`` with the model's ``aggregator_args``, checked first.

    Raises
    ------
    ConfigurationError, InvalidArgumentsError
        As ``validate_aggregator_args``; also ``InvalidArgumentsError`` when the arguments do not suit the
        number of updates (e.g. Krum with too few of them).
    InvalidWeightsError
        The updates (or ``context.current``) do not share one structure, or there are none.
    """
    aggregator = aggregators.get(name)
    keywords = _bind(name, aggregator, args, field="aggregator_args", positional=False)
    return aggregator(updates, context=context, **keywords)


def call_requirement(name: str, summary: PendingSummary, args: Mapping[str, Any] | Sequence[Any] | None) -> bool:
    """Whether the requirement registered as ``name`` is met, with the model's ``requirement_args``, checked first."""
    requirement = requirements.get(name)
    keywords = _bind(name, requirement, args, field="requirement_args", positional=True)
    return requirement(summary, **keywords)
