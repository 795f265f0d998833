"""Binary weights: safetensors (the at-rest and exchange format), npz, and lazy reads of stored tensors.

safetensors (https://huggingface.co/docs/safetensors) is an 8-byte little-endian header length, a JSON
header ``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}`` and the raw little-endian
tensor data. Its header alone gives the structure, and each tensor's bytes are one byte range: so a
stored file is checked without reading its data and aggregated one tensor at a time, locally (file
reads at offsets) and on S3 (ranged GETs). Nothing here ever unpickles: npz is read with
``allow_pickle=False`` and an object array inside is refused.

The ``__metadata__`` key ``fma.layered`` keeps whether the JSON form is a single array (``"false"``) or
a list of layers, so JSON → safetensors → JSON gives back the same document.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np

from fma_core.aws import aws_client
from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Structure, TensorSpec, Weights, check_structure

__all__ = [
    "DTYPES",
    "BytesRangeReader",
    "FileRangeReader",
    "RangeReader",
    "S3RangeReader",
    "SafetensorsTensors",
    "TensorSource",
    "check_finite",
    "check_values",
    "encode_npz",
    "encode_safetensors",
    "l2_norm",
    "load_stored",
    "open_stored",
    "parse_npz",
    "parse_safetensors",
    "read_stored_structure",
    "validate_tensors",
    "write_safetensors",
]

# numpy dtype name ↔ safetensors dtype code, for every dtype a model may hold. bfloat16 and bool have no
# numpy equivalent FMA can aggregate, so they are refused.
DTYPES: dict[str, str] = {
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
    "int8": "I8",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
}
_NUMPY_DTYPES = {code: name for name, code in DTYPES.items()}
_METADATA = "__metadata__"
_LAYERED = "fma.layered"
# safetensors' own bound: a header larger than this is refused before it is read.
MAX_HEADER_BYTES = 100_000_000
_LENGTH = struct.Struct("<Q")
_ZIP_MAGIC = b"PK\x03\x04"
# Legacy stored npz files named their arrays so (fma_core before safetensors).
_LEGACY_SINGLE = "array"
_LEGACY_LAYER = "layer_"


class RangeReader(Protocol):
    """Bytes of one stored object, read by range (a local file, an S3 object, bytes in memory)."""

    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class BytesRangeReader:
    """A ``RangeReader`` over bytes already in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])


class FileRangeReader:
    """A ``RangeReader`` over a local file: each read is one ``pread`` at its offset (nothing else is loaded)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self.size = os.path.getsize(self._path)

    def read(self, offset: int, length: int) -> bytes:
        descriptor = os.open(self._path, os.O_RDONLY)
        try:
            chunks = []
            while length > 0:
                chunk = os.pread(descriptor, length, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(descriptor)


class S3RangeReader:
    """A ``RangeReader`` over an S3 object: each read is one ranged ``GetObject``."""

    def __init__(self, bucket: str, key: str, *, client: Any = None) -> None:
        self._client = aws_client("s3") if client is None else client
        self._bucket = bucket
        self._key = key
        self.size = int(self._client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={offset}-{offset + length - 1}"
        )
        chunk: bytes = response["Body"].read()
        return chunk


class TensorSource(Protocol):
    """Tensors read one at a time: ``Weights`` in memory, or ``SafetensorsTensors`` from storage."""

    @property
    def structure(self) -> Structure: ...

    def tensor(self, index: int) -> np.ndarray: ...


def _header_error(problem: str) -> InvalidWeightsError:
    return InvalidWeightsError(f"not a valid safetensors file: {problem}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _header_error(f"tensor {key!r} appears twice in the header")
        result[key] = value
    return result


def _tensor_spec(name: str, entry: Any) -> tuple[TensorSpec, int, int]:
    if not isinstance(entry, Mapping) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _header_error(f"the header entry of tensor {name!r} must hold exactly dtype, shape and data_offsets")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in _NUMPY_DTYPES:
        raise InvalidWeightsError(f"tensor {name!r} has dtype {code!r}; supported: {', '.join(sorted(_NUMPY_DTYPES))}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _header_error(f"the shape of tensor {name!r} must be a list of non-negative integers")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise _header_error(f"the data_offsets of tensor {name!r} must be two ordered non-negative integers")
    spec = TensorSpec(name=name, shape=tuple(shape), dtype=_NUMPY_DTYPES[code])
    if offsets[1] - offsets[0] != spec.nbytes:
        raise _header_error(
            f"tensor {name!r} of shape {shape} and dtype {code} needs {spec.nbytes} bytes, "
            f"its data_offsets give {offsets[1] - offsets[0]}"
        )
    return spec, offsets[0], offsets[1]


@dataclass(frozen=True)
class _Header:
    structure: Structure
    # Absolute byte offset of each tensor's data, in structure order.
    starts: tuple[int, ...]


def _read_header(reader: RangeReader) -> _Header:
    if reader.size < _LENGTH.size:
        raise _header_error(f"{reader.size} bytes is shorter than the 8-byte header length")
    (length,) = _LENGTH.unpack(reader.read(0, _LENGTH.size))
    if length > MAX_HEADER_BYTES or _LENGTH.size + length > reader.size:
        raise _header_error(f"a header of {length} bytes does not fit a file of {reader.size} bytes")
    try:
        header = json.loads(reader.read(_LENGTH.size, length), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as error:
        if isinstance(error, InvalidWeightsError):
            raise
        raise _header_error(f"the header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise _header_error("the header must be a JSON object")
    metadata = header.pop(_METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _header_error("__metadata__ must map strings to strings")
    if not header:
        raise InvalidWeightsError("the weights hold no tensors")
    entries = sorted((_tensor_spec(name, entry) for name, entry in header.items()), key=lambda item: item[1:])
    data_start = _LENGTH.size + length
    position = 0
    for spec, begin, end in entries:
        # Tensors must tile the data exactly, as safetensors itself requires: no holes, no overlaps.
        if begin != position:
            raise _header_error(f"the data of tensor {spec.name!r} starts at {begin}, expected {position}")
        position = end
    if data_start + position != reader.size:
        raise _header_error(f"the tensors need {position} bytes of data, the file has {reader.size - data_start}")
    layered = metadata.get(_LAYERED, "true") != "false" or len(entries) != 1
    return _Header(
        structure=Structure(tensors=tuple(spec for spec, _, _ in entries), layered=layered),
        starts=tuple(data_start + begin for _, begin, _ in entries),
    )


class SafetensorsTensors:
    """The tensors of a safetensors file, read lazily: the header once, then one tensor's bytes per ``tensor``.

    Opening checks the header (dtypes, shapes, offsets tiling the data exactly); nothing of the data is read.
    """

    def __init__(self, reader: RangeReader) -> None:
        self._reader = reader
        self._header = _read_header(reader)

    @property
    def structure(self) -> Structure:
        return self._header.structure

    def tensor(self, index: int) -> np.ndarray:
        spec = self._header.structure.tensors[index]
        data = self._reader.read(self._header.starts[index], spec.nbytes)
        return np.frombuffer(data, dtype=np.dtype(spec.dtype).newbyteorder("<")).reshape(spec.shape)

    def load(self) -> Weights:
        """Every tensor in memory."""
        return Weights.like(self.structure, [self.tensor(index) for index in range(len(self.structure.tensors))])


def _header_bytes(structure: Structure) -> bytes:
    header: dict[str, Any] = {_METADATA: {_LAYERED: "true" if structure.layered else "false"}}
    offset = 0
    for spec in structure.tensors:
        if spec.dtype not in DTYPES:
            raise InvalidWeightsError(
                f"{spec.describe()} has dtype {spec.dtype}; supported: {', '.join(sorted(DTYPES))}"
            )
        end = offset + spec.nbytes
        header[spec.name] = {"dtype": DTYPES[spec.dtype], "shape": list(spec.shape), "data_offsets": [offset, end]}
        offset = end
    encoded = json.dumps(header, separators=(",", ":")).encode()
    # Padded with spaces so that the data starts 8-byte aligned, as safetensors writers do.
    encoded += b" " * (-(len(encoded) + _LENGTH.size) % 8)
    return _LENGTH.pack(len(encoded)) + encoded


def write_safetensors(source: TensorSource, stream: IO[bytes]) -> int:
    """Write ``source`` as safetensors to ``stream``, one tensor in memory at a time; returns the bytes written."""
    structure = source.structure
    header = _header_bytes(structure)
    stream.write(header)
    written = len(header)
    for index, spec in enumerate(structure.tensors):
        array = np.ascontiguousarray(source.tensor(index), dtype=np.dtype(spec.dtype).newbyteorder("<"))
        stream.write(array.data.cast("B"))
        written += array.nbytes
    return written


def encode_safetensors(weights: TensorSource) -> bytes:
    """The safetensors bytes of ``weights``."""
    buffer = io.BytesIO()
    write_safetensors(weights, buffer)
    return buffer.getvalue()


def encode_npz(weights: Weights) -> bytes:
    """An ``.npz`` of the weights, one ``.npy`` per tensor named as the tensor (no pickle)."""
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **dict(zip(weights.names, weights.layers, strict=True)))
    return buffer.getvalue()


def parse_npz(stream: IO[bytes] | bytes) -> Weights:
    """Weights from an ``.npz`` (a seekable stream or bytes); an object array (pickle) inside is refused.

    Files FMA stored before safetensors (arrays ``array`` or ``layer_0``, ``layer_1``, ...) read back as the
    JSON documents they came from.
    """
    source = io.BytesIO(stream) if isinstance(stream, bytes) else stream
    try:
        with np.load(source, allow_pickle=False) as archive:
            names = list(archive.files)
            if names == [_LEGACY_SINGLE]:
                return Weights(layers=(archive[_LEGACY_SINGLE],), layered=False)
            legacy = [f"{_LEGACY_LAYER}{index}" for index in range(len(names))]
            if sorted(names) == sorted(legacy):
                return Weights(layers=tuple(archive[name] for name in legacy), layered=True)
            layers = []
            for name in names:
                layer = archive[name]
                if layer.dtype.name not in DTYPES:
                    raise InvalidWeightsError(
                        f"tensor {name!r} has dtype {layer.dtype}; supported: {', '.join(sorted(DTYPES))}"
                    )
                layers.append(layer)
    except ValueError as error:
        if isinstance(error, InvalidWeightsError):
            raise
        if "allow_pickle" in str(error):
            raise InvalidWeightsError(
                "the npz holds a Python object array (pickle), which is refused: save plain numeric arrays"
            ) from None
        raise InvalidWeightsError(f"not a valid npz file: {error}") from None
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidWeightsError(f"not a valid npz file: {error}") from None
    if not layers:
        raise InvalidWeightsError("the weights hold no tensors")
    return Weights(layers=tuple(layers), layered=True, names=tuple(names))


def parse_safetensors(reader: RangeReader | bytes) -> SafetensorsTensors:
    """Open safetensors bytes for checking: the header is read and checked, no tensor data yet."""
    return SafetensorsTensors(BytesRangeReader(reader) if isinstance(reader, bytes) else reader)


def check_finite(source: TensorSource) -> None:
    """Raise ``InvalidWeightsError`` naming the first float tensor holding NaN or infinity; reads one at a time."""
    for index, spec in enumerate(source.structure.tensors):
        if np.dtype(spec.dtype).kind == "f" and not np.isfinite(source.tensor(index)).all():
            raise InvalidWeightsError(f"{spec.describe()} contains NaN or infinite values")


def check_values(source: TensorSource) -> None:
    """Raise ``InvalidWeightsError`` naming the first tensor that is empty or holds NaN or infinity."""
    for spec in source.structure.tensors:
        # As a JSON layer may not be empty; an empty tensor would also fail every aggregation that writes it.
        if math.prod(spec.shape) == 0:
            raise InvalidWeightsError(f"{spec.describe()} is empty")
    check_finite(source)


def l2_norm(source: TensorSource) -> float:
    """The Euclidean norm of all the values of the tensors, read one at a time; inf only when it exceeds float64.

    Each tensor is scaled by its largest magnitude before squaring, so that values beyond 1e154 do not overflow.
    """
    norms = []
    for index in range(len(source.structure.tensors)):
        values = np.asarray(source.tensor(index), dtype=np.float64).ravel()
        largest = float(np.abs(values).max(initial=0.0))
        norms.append(0.0 if largest == 0.0 else largest * float(np.linalg.norm(values / largest)))
    # math.hypot scales too: the total overflows only when the norm itself is beyond float64.
    return math.hypot(*norms)


def validate_tensors(source: TensorSource, expected: Structure | None) -> None:
    """Check names, shapes and dtypes against the model's structure (when it has one), then the values."""
    if expected is not None:
        check_structure(expected, source.structure)
    check_values(source)


def open_stored(reader: RangeReader) -> Weights | SafetensorsTensors:
    """The tensors of a stored weights file, read lazily when it is safetensors.

    Files stored before safetensors (``.npz``, recognised by content) are loaded whole.

    Raises
    ------
    InvalidWeightsError
        "stored weights are unreadable: ..." with the problem.
    """
    try:
        if reader.read(0, len(_ZIP_MAGIC)) == _ZIP_MAGIC:
            return parse_npz(reader.read(0, reader.size))
        return SafetensorsTensors(reader)
    except InvalidWeightsError as error:
        raise InvalidWeightsError(f"stored weights are unreadable: {error}") from None


def load_stored(reader: RangeReader) -> Weights:
    """Every tensor of a stored weights file in memory."""
    source = open_stored(reader)
    return source if isinstance(source, Weights) else source.load()


def read_stored_structure(reader: RangeReader) -> Structure:
    """The structure of a stored weights file, from the safetensors header alone (legacy npz: loaded)."""
    return open_stored(reader).structure
