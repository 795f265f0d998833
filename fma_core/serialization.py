"""Weights as numpy layers, their structure, and the JSON wire form.

A weights document is either one numeric array of any rank (``[0.1, 0.2]``, ``[[1, 2], [3, 4]]``)
or a list of such arrays whose shapes differ (``[[1, 2], [3, 4, 5]]``): one "layer" per item.
Both round-trip to the same JSON. Integers stay integers (int64), floats are float64.

Layers carry names, as the tensors of a PyTorch ``state_dict`` do; a JSON document's layers are
named ``"0"``, ``"1"``, ... so that its JSON and binary forms (``fma_core.tensors``) map one to one.
A model's *structure* is the ordered list of (name, shape, dtype) of its layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson

from fma_core.exceptions import InvalidWeightsError


@cache
def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a structure: its name, shape and numpy dtype name (``"float32"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * _itemsize(self.dtype)

    def describe(self) -> str:
        """How messages name it: ``layer 1`` for a JSON layer, ``tensor 'fc.weight'`` otherwise."""
        return f"layer {self.name}" if self.name.isdigit() else f"tensor {self.name!r}"


@dataclass(frozen=True)
class Structure:
    """The ordered tensors of some weights, and whether their JSON form is a list of layers.

    ``to_json``/``from_json`` give the form stored on database rows.
    """

    tensors: tuple[TensorSpec, ...]
    layered: bool = True

    @property
    def parameter_count(self) -> int:
        return sum(tensor.size for tensor in self.tensors)

    @property
    def byte_size(self) -> int:
        """Bytes of the tensors' data (what a binary file holds besides its header)."""
        return sum(tensor.nbytes for tensor in self.tensors)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tensor.shape for tensor in self.tensors)

    def to_json(self) -> dict[str, Any]:
        return {
            "layered": self.layered,
            "tensors": [
                {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype} for tensor in self.tensors
            ],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Structure:
        return cls(
            tensors=tuple(
                TensorSpec(name=item["name"], shape=tuple(item["shape"]), dtype=item["dtype"])
                for item in value["tensors"]
            ),
            layered=bool(value["layered"]),
        )


def layer_names(count: int) -> tuple[str, ...]:
    """The names of a JSON document's layers: ``"0"``, ``"1"``, ..."""
    return tuple(str(index) for index in range(count))


@dataclass(frozen=True)
class Weights:
    """Model weights as named numpy layers.

    ``layered`` is False when the document was a single array (then ``layers`` holds exactly it).
    ``names`` default to ``"0"``, ``"1"``, ... (the names of a JSON document's layers).
    """

    layers: tuple[np.ndarray, ...]
    layered: bool
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.names:
            object.__setattr__(self, "names", layer_names(len(self.layers)))
        elif len(self.names) != len(self.layers):
            raise ValueError(f"{len(self.names)} names for {len(self.layers)} layers")

    @classmethod
    def like(cls, template: Weights | Structure, layers: Sequence[np.ndarray]) -> Weights:
        """Weights with ``template``'s names and structure flag, and the given layers."""
        names = template.names if isinstance(template, Weights) else tuple(t.name for t in template.tensors)
        return cls(layers=tuple(layers), layered=template.layered, names=names)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(layer.shape for layer in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def structure(self) -> Structure:
        return Structure(
            tensors=tuple(
                TensorSpec(name=name, shape=tuple(int(n) for n in layer.shape), dtype=layer.dtype.name)
                for name, layer in zip(self.names, self.layers, strict=True)
            ),
            layered=self.layered,
        )

    def tensor(self, index: int) -> np.ndarray:
        """Layer ``index`` (the ``TensorSource`` protocol of ``fma_core.tensors``, for weights in memory)."""
        return self.layers[index]


def _numeric_array(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise InvalidWeightsError(f"{where} is not a rectangular array of numbers") from error
    if array.dtype.kind == "i":
        array = array.astype(np.int64, copy=False)
    elif array.dtype.kind == "f":
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            raise InvalidWeightsError(f"{where} contains NaN or infinite values")
    else:
        raise InvalidWeightsError(f"{where} must contain only numbers")
    if array.ndim == 0:
        raise InvalidWeightsError(f"{where} must be a list of numbers, not a single number")
    if array.size == 0:
        raise InvalidWeightsError(f"{where} is empty")
    return array


def parse_weights(value: Any) -> Weights:
    """Weights from a decoded JSON document; raises ``InvalidWeightsError`` naming the problem."""
    if not isinstance(value, list) or not value:
        raise InvalidWeightsError("weights must be a non-empty JSON list of numbers or of layers")
    try:
        return Weights(layers=(_numeric_array(value, "weights"),), layered=False)
    except InvalidWeightsError as whole_error:
        if not all(isinstance(item, list) for item in value):
            raise whole_error
    return Weights(
        layers=tuple(_numeric_array(item, f"layer {index}") for index, item in enumerate(value)),
        layered=True,
    )


def parse_weights_json(document: bytes | str) -> Weights:
    """Weights from JSON text."""
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError as error:
        raise InvalidWeightsError(f"weights are not valid JSON: {error}") from error
    return parse_weights(value)


def weights_to_jsonable(weights: Weights) -> Any:
    """What a JSON renderer that understands numpy (orjson) turns into the weights document.

    Tensor names are dropped (the layers keep their order). A 0-d tensor (a scalar buffer of a state_dict)
    becomes its number: orjson serialises no 0-d array.
    """
    layers = [layer.item() if layer.ndim == 0 else layer for layer in weights.layers]
    return layers if weights.layered else layers[0]


def weights_to_json(weights: Weights) -> bytes:
    """The weights document as JSON bytes."""
    return orjson.dumps(weights_to_jsonable(weights), option=orjson.OPT_SERIALIZE_NUMPY)


def _as_layers(structure: Structure, *, layered: bool) -> Structure:
    # A document of equal-length rows ([[1, 2], [3, 4]]) parses as one array; next to weights whose
    # layers differ in shape, the client meant one layer per row.
    if layered and not structure.layered and len(structure.shapes[0]) > 1:
        (whole,) = structure.tensors
        row = TensorSpec(name="", shape=whole.shape[1:], dtype=whole.dtype)
        rows = tuple(TensorSpec(name=name, shape=row.shape, dtype=row.dtype) for name in layer_names(whole.shape[0]))
        return Structure(tensors=rows, layered=True)
    return structure


def _layer_count(structure: Structure) -> str:
    count = len(structure.tensors)
    return "1 layer" if count == 1 else f"{count} layers"


def _check_layers(expected: Structure, got: Structure, *, what: str) -> None:
    """Positional comparison of a JSON document's layers (named by their index) with the model's tensors."""
    layered = expected.layered or got.layered
    expected, got = _as_layers(expected, layered=layered), _as_layers(got, layered=layered)
    # Layers the two have in common first, so that a layer count off by one still names a shape.
    for want, have in zip(expected.tensors, got.tensors, strict=False):
        if want.shape != have.shape:
            raise InvalidWeightsError(
                f"{want.describe()} has shape {list(have.shape)} but the model's weights have shape {list(want.shape)}"
            )
    if len(got.tensors) != len(expected.tensors):
        index = min(len(got.tensors), len(expected.tensors))
        problem = (
            f"layer {index} (shape {list(got.tensors[index].shape)}) is not in the model's weights"
            if len(got.tensors) > len(expected.tensors)
            else f"layer {index} (shape {list(expected.tensors[index].shape)}) is missing"
        )
        raise InvalidWeightsError(
            f"{what} has {_layer_count(got)} but the model's weights have {_layer_count(expected)}: {problem}"
        )


def _is_json_structure(structure: Structure) -> bool:
    return tuple(tensor.name for tensor in structure.tensors) == layer_names(len(structure.tensors))


def check_structure(expected: Structure, got: Structure, *, compare_dtypes: bool = True, what: str = "data") -> None:
    """Raise ``InvalidWeightsError`` naming the first tensor of ``got`` that differs from ``expected``.

    Tensors are matched by name; a JSON document's layers (named ``"0"``, ``"1"``, ...) by position, whatever the
    model's tensors are named (``conform_json_names`` then gives them the model's names). A JSON document's
    numbers have no dtype of their own, so callers checking one pass ``compare_dtypes=False``.
    """
    if _is_json_structure(got):
        _check_layers(expected, got, what=what)
    else:
        wanted = {tensor.name: tensor for tensor in expected.tensors}
        present = {tensor.name: tensor for tensor in got.tensors}
        for tensor in expected.tensors:
            if tensor.name not in present:
                raise InvalidWeightsError(
                    f"{tensor.describe()} (shape {list(tensor.shape)}, {tensor.dtype}) is missing from {what}"
                )
        for tensor in got.tensors:
            if tensor.name not in wanted:
                raise InvalidWeightsError(f"{tensor.describe()} of {what} is not in the model's weights")
            want = wanted[tensor.name]
            if want.shape != tensor.shape:
                raise InvalidWeightsError(
                    f"{tensor.describe()} has shape {list(tensor.shape)} but the model's weights have shape "
                    f"{list(want.shape)}"
                )
    if compare_dtypes:
        dtypes = {tensor.name: tensor.dtype for tensor in expected.tensors}
        for tensor in got.tensors:
            wanted_dtype = dtypes.get(tensor.name)
            if wanted_dtype is not None and wanted_dtype != tensor.dtype:
                raise InvalidWeightsError(
                    f"{tensor.describe()} has dtype {tensor.dtype} but the model's weights have dtype {wanted_dtype}"
                )


def conform_json_names(weights: Weights, model: Structure) -> Weights:
    """A JSON document's layers named as the model's tensors, in order, when it has the model's tensor count.

    So that a JSON update of a model created from a named ``state_dict`` is stored with the model's names.
    """
    names = tuple(tensor.name for tensor in model.tensors)
    if weights.names == layer_names(len(weights.layers)) and len(names) == len(weights.layers):
        return Weights(layers=weights.layers, layered=weights.layered, names=names)
    return weights


def check_same_structure(reference: Weights | Structure, candidate: Weights | Structure) -> None:
    """Raise ``InvalidWeightsError`` naming the first tensor whose position, name or shape differs."""
    expected = reference.structure if isinstance(reference, Weights) else reference
    got = candidate.structure if isinstance(candidate, Weights) else candidate
    if len(expected.tensors) != len(got.tensors):
        raise InvalidWeightsError(
            f"expected {len(expected.tensors)} layers like the model's weights, got {len(got.tensors)}"
        )
    for want, have in zip(expected.tensors, got.tensors, strict=True):
        if want.name != have.name:
            raise InvalidWeightsError(f"{have.describe()} stands where the model's weights have {want.describe()}")
        if want.shape != have.shape:
            raise InvalidWeightsError(
                f"{want.describe()} has shape {list(have.shape)} but the model's weights have shape {list(want.shape)}"
            )
