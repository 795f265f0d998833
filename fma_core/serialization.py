"""Weights: JSON on the wire, compact binary (``.npz`` of ``.npy`` layers, never pickle) at rest.

A weights document is either one numeric array of any rank (``[0.1, 0.2]``, ``[[1, 2], [3, 4]]``)
or a list of such arrays whose shapes differ (``[[1, 2], [3, 4, 5]]``): one "layer" per item.
Both round-trip to the same JSON. Integers stay integers, floats are float64.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson

from fma_core.exceptions import InvalidWeightsError

_SINGLE_ARRAY_KEY = "array"
_LAYER_KEY_PREFIX = "layer_"


@dataclass(frozen=True)
class Weights:
    """Model weights as numpy layers.

    ``layered`` is False when the document was a single array (then ``layers`` holds exactly it).
    """

    layers: tuple[np.ndarray, ...]
    layered: bool

    @classmethod
    def like(cls, template: Weights, layers: Sequence[np.ndarray]) -> Weights:
        """Weights with ``template``'s structure flag and the given layers."""
        return cls(layers=tuple(layers), layered=template.layered)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(layer.shape for layer in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(layer.size for layer in self.layers)


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


def weights_to_jsonable(weights: Weights) -> np.ndarray | list[np.ndarray]:
    """What a JSON renderer that understands numpy (orjson) turns into the weights document."""
    return list(weights.layers) if weights.layered else weights.layers[0]


def weights_to_json(weights: Weights) -> bytes:
    """The weights document as JSON bytes."""
    return orjson.dumps(weights_to_jsonable(weights), option=orjson.OPT_SERIALIZE_NUMPY)


def weights_to_bytes(weights: Weights) -> bytes:
    """The binary (``.npz``) form stored in files."""
    if weights.layered:
        arrays = {f"{_LAYER_KEY_PREFIX}{index}": layer for index, layer in enumerate(weights.layers)}
    else:
        arrays = {_SINGLE_ARRAY_KEY: weights.layers[0]}
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def weights_from_file(stream: IO[bytes] | bytes) -> Weights:
    """Weights from their binary form (a seekable binary stream or bytes)."""
    source = io.BytesIO(stream) if isinstance(stream, bytes) else stream
    try:
        with np.load(source, allow_pickle=False) as archive:
            names = archive.files
            if names == [_SINGLE_ARRAY_KEY]:
                return Weights(layers=(archive[_SINGLE_ARRAY_KEY],), layered=False)
            count = len(names)
            return Weights(
                layers=tuple(archive[f"{_LAYER_KEY_PREFIX}{index}"] for index in range(count)),
                layered=True,
            )
    except (ValueError, KeyError, OSError) as error:
        raise InvalidWeightsError(f"stored weights are unreadable: {error}") from error


def check_same_structure(reference: Weights, candidate: Weights) -> None:
    """Raise ``InvalidWeightsError`` naming the first layer whose shape differs from the reference."""
    if len(reference.layers) != len(candidate.layers):
        raise InvalidWeightsError(
            f"expected {len(reference.layers)} layers like the model's weights, got {len(candidate.layers)}"
        )
    for index, (expected, got) in enumerate(zip(reference.shapes, candidate.shapes, strict=True)):
        if expected != got:
            raise InvalidWeightsError(
                f"layer {index} has shape {list(got)} but the model's weights have shape {list(expected)}"
            )
