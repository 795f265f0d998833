"""Weights as the caller has them (arrays, lists of arrays, state_dict-like mappings) to and from the wire.

Small weights go as the contract's JSON; large ones, and named tensors (which JSON cannot name), as
safetensors through the upload flow, which keeps their dtype. Downloads come as safetensors, so the weights
come back in the model's dtype: a list of arrays for a model of JSON layers, one array for a single-array
model, a dict of names to arrays for named tensors.

Both directions go through files, never through one ``bytes`` of the whole model: an upload is written to a
file (safetensors' ``save_file`` writes from each array's own memory) and sent from it; a download is
written to a file and its tensors read from it one by one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

# What an upload sends: a safetensors file as it is, or tensors (and whether they are layers; see ``to_tensors``).
Upload = os.PathLike[str] | tuple[Mapping[str, np.ndarray], bool | None]

# Metadata entry of the service's safetensors files: whether the JSON form is a list of layers.
LAYERED = "fma.layered"


def as_array(value: Any) -> np.ndarray:
    """An array from a NumPy array, a nested list or a tensor-like (PyTorch: ``detach().cpu().numpy()``)."""
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    # Not ``np.ascontiguousarray``: it turns a 0-d array (a scalar buffer, BatchNorm's counter) into shape (1,).
    return np.asarray(value, order="C")


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


def check_same_tensors(expected: Mapping[str, tuple[int, ...]], weights: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming what differs when ``weights`` do not have the names and shapes expected."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"expected named tensors (a mapping), got {type(weights).__name__}")
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(f"the weights do not fit the model: missing {missing}, unexpected {unexpected}")
    shapes = {
        name: (shape, tuple(np.shape(weights[name])))
        for name, shape in expected.items()
        if tuple(np.shape(weights[name])) != shape
    }
    if shapes:
        raise ValueError(f"the weights do not fit the model: shapes (model, weights) {shapes}")


def nbytes(tensors: Mapping[str, np.ndarray]) -> int:
    return sum(array.nbytes for array in tensors.values())


def to_json(tensors: Mapping[str, np.ndarray], layered: bool | None) -> Any:
    """The contract's JSON document (lists of numbers) of tensors that came from layers or one array."""
    if layered:
        return [array.tolist() for array in tensors.values()]
    return tensors["0"].tolist()


def write_safetensors(tensors: Mapping[str, np.ndarray], layered: bool | None, path: str | os.PathLike[str]) -> None:
    """Write ``tensors`` as a safetensors file (from the arrays' memory: no copy of the model is made)."""
    metadata = None if layered is None else {LAYERED: "true" if layered else "false"}
    save_file(dict(tensors), path, metadata=metadata)


@contextmanager
def upload_file(weights: Upload) -> Iterator[io.BufferedReader]:
    """The file an upload sends, open for reading: the given file, or the tensors written to a temporary one."""
    if isinstance(weights, os.PathLike):
        with Path(weights).open("rb") as file:
            yield file
        return
    tensors, layered = weights
    with tempfile.TemporaryDirectory(prefix="fma-") as folder:
        path = Path(folder) / "weights.safetensors"
        write_safetensors(tensors, layered, path)
        with path.open("rb") as file:
            yield file


def file_digest(file: io.BufferedIOBase) -> tuple[int, str]:
    """The size and SHA-256 (hex) of a binary file, read in blocks from its start."""
    file.seek(0)
    digest = hashlib.file_digest(file, "sha256")
    return file.tell(), digest.hexdigest()


# safetensors dtype codes of the dtypes the service stores (bfloat16 and bool it refuses).
_NUMPY_DTYPES = {
    code: np.dtype(name).newbyteorder("<")
    for code, name in {
        "F16": "float16",
        "F32": "float32",
        "F64": "float64",
        "I8": "int8",
        "I16": "int16",
        "I32": "int32",
        "I64": "int64",
        "U8": "uint8",
        "U16": "uint16",
        "U32": "uint32",
        "U64": "uint64",
    }.items()
}


def read_safetensors(path: str | os.PathLike[str]) -> Any:
    """Weights of a safetensors file in their dtype: one array, a list of arrays, or a dict of named arrays.

    Each tensor is read from the file into its own array, so reading takes the memory of the result and
    no more. (``safetensors.safe_open`` maps the file instead, and the pages it touches count in the
    process's resident memory next to the arrays it copies out: twice the model at the end.)
    """
    with Path(path).open("rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
        metadata = header.pop("__metadata__", None) or {}
        start = 8 + header_size

        def tensor(name: str) -> np.ndarray:
            entry = header[name]
            begin, end = entry["data_offsets"]
            dtype = _NUMPY_DTYPES[entry["dtype"]]
            file.seek(start + begin)
            array = np.fromfile(file, dtype=dtype, count=(end - begin) // dtype.itemsize)
            if array.nbytes != end - begin:
                raise ValueError(f"{path}: tensor {name!r} is cut short")
            return array.reshape(entry["shape"])

        # The file's order (by offset); safetensors itself orders tensors by dtype and name, not as given.
        names = sorted(header, key=lambda name: header[name]["data_offsets"][0])
        if metadata.get(LAYERED) == "false" and len(names) == 1:
            return tensor(names[0])
        # Layers of a JSON model are named by position; any other names are a state_dict's.
        positions = [str(index) for index in range(len(names))]
        if sorted(names) == sorted(positions):
            return [tensor(name) for name in positions]
        return {name: tensor(name) for name in names}
