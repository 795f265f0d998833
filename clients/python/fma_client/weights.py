"""Weights as the caller has them (arrays, lists of arrays, state_dict-like mappings) to and from the wire.

Small weights go as the contract's JSON; large ones, and named tensors (which JSON cannot name), as
safetensors through the upload flow, which keeps their dtype. Downloads come as safetensors, so the weights
come back in the model's dtype: a list of arrays for a model of JSON layers, one array for a single-array
model, a dict of names to arrays for named tensors.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

# Metadata entry of the service's safetensors files: whether the JSON form is a list of layers.
LAYERED = "fma.layered"


def as_array(value: Any) -> np.ndarray:
    """An array from a NumPy array, a nested list or a tensor-like (PyTorch: ``detach().cpu().numpy()``)."""
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(value))


def _is_tensor(value: Any) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "detach")


def to_tensors(data: Any) -> tuple[dict[str, np.ndarray], bool | None]:
    """Named tensors of ``data`` and whether its JSON form is a list of layers (None: named tensors)."""
    if isinstance(data, Mapping):
        return {str(name): as_array(value) for name, value in data.items()}, None
    if _is_tensor(data):
        return {"0": as_array(data)}, False
    if isinstance(data, list | tuple) and data and all(_is_tensor(item) or isinstance(item, list) for item in data):
        if any(_is_tensor(item) for item in data):
            return {str(index): as_array(item) for index, item in enumerate(data)}, True
        try:
            return {"0": as_array(data)}, False
        except ValueError:  # ragged: layers of different shapes
            return {str(index): as_array(item) for index, item in enumerate(data)}, True
    return {"0": as_array(data)}, False


def nbytes(tensors: Mapping[str, np.ndarray]) -> int:
    return sum(array.nbytes for array in tensors.values())


def to_json(tensors: Mapping[str, np.ndarray], layered: bool | None) -> Any:
    """The contract's JSON document (lists of numbers) of tensors that came from layers or one array."""
    if layered:
        return [array.tolist() for array in tensors.values()]
    return tensors["0"].tolist()


def to_safetensors(tensors: Mapping[str, np.ndarray], layered: bool | None) -> bytes:
    metadata = None if layered is None else {LAYERED: "true" if layered else "false"}
    return safetensors_save(dict(tensors), metadata=metadata)


def from_safetensors(payload: bytes) -> Any:
    """Weights of a safetensors file in their dtype: one array, a list of arrays, or a dict of named arrays."""
    (header_size,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8 : 8 + header_size])
    metadata = header.pop("__metadata__", None) or {}
    # The file's order (by offset); safetensors itself orders tensors by dtype and name, not as given.
    names = sorted(header, key=lambda name: header[name]["data_offsets"][0])
    tensors = safetensors_load(payload)
    if metadata.get(LAYERED) == "false" and len(names) == 1:
        return tensors[names[0]]
    # Layers of a JSON model are named by position; any other names are a state_dict's.
    positions = [str(index) for index in range(len(names))]
    if sorted(names) == sorted(positions):
        return [tensors[name] for name in positions]
    return {name: tensors[name] for name in names}
