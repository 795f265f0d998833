"""Binary weights: safetensors and npz in and out, header-only structure, lazy reads, refusals naming the tensor."""

from __future__ import annotations

import io
import json
import struct

import boto3
import numpy as np
import pytest
import safetensors.numpy
from moto import mock_aws

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Structure, TensorSpec, Weights, check_structure, parse_weights, weights_to_json
from fma_core.tensors import (
    BytesRangeReader,
    FileRangeReader,
    S3RangeReader,
    check_finite,
    encode_npz,
    encode_safetensors,
    load_stored,
    parse_npz,
    parse_safetensors,
    read_stored_structure,
    validate_tensors,
)

DOCUMENTS = [[1, 2, 3], [0.5, -1e-300, 1e300], [[1, 2], [3, 4]], [[1.5], [2, 3, 4], [[5, 6], [7, 8]]], [[[0.25]]]]


def state_dict() -> Weights:
    return Weights(
        layers=(np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, 1.5], dtype=np.float16)),
        layered=True,
        names=("fc.weight", "fc.bias"),
    )


class CountingReader(BytesRangeReader):
    """Bytes in memory that remember which ranges were read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        self.ranges.append((offset, length))
        return super().read(offset, length)


def raw_safetensors(header: dict, data: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def duplicated() -> bytes:
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    header = f'{{"w": {entry}, "w": {entry}}}'.encode()
    return struct.pack("<Q", len(header)) + header + b"\0"


class TestJsonDocuments:
    @pytest.mark.parametrize("document", DOCUMENTS)
    def test_json_to_safetensors_to_json_is_exact(self, document):
        stored = encode_safetensors(parse_weights(document))

        loaded = load_stored(BytesRangeReader(stored))

        assert weights_to_json(loaded) == weights_to_json(parse_weights(document))
        assert json.loads(weights_to_json(loaded)) == document

    def test_layers_are_named_by_position_and_integers_stay_integers(self):
        stored = encode_safetensors(parse_weights([[1, 2], [0.5, 1.5, 2.5]]))

        tensors = safetensors.numpy.load(stored)

        assert sorted(tensors) == ["0", "1"]
        assert tensors["0"].dtype == np.int64
        assert tensors["1"].dtype == np.float64

    def test_a_0_d_tensor_renders_as_a_number(self):
        """A scalar buffer of a state_dict (BatchNorm's counter) has shape (); its JSON form is the number."""
        stored = safetensors.numpy.save({"w": np.array([1.5, 2.0], np.float32), "steps": np.array(7, np.int64)})

        loaded = load_stored(BytesRangeReader(stored))

        assert json.loads(weights_to_json(loaded)) == [7, [1.5, 2.0]]


class TestSafetensors:
    def test_dtypes_and_names_stay_what_they_are(self):
        stored = encode_safetensors(state_dict())

        # The reference implementation reads what we write ...
        tensors = safetensors.numpy.load(stored)
        assert tensors["fc.weight"].dtype == np.float32
        assert tensors["fc.bias"].dtype == np.float16
        # ... and we read what it writes, in the order of the data.
        source = parse_safetensors(safetensors.numpy.save({"b": np.ones(2, np.float32), "a": np.zeros(3)}))
        assert [(t.name, t.shape, t.dtype) for t in source.structure.tensors] == [
            ("a", (3,), "float64"),
            ("b", (2,), "float32"),
        ]
        np.testing.assert_array_equal(source.tensor(1), np.ones(2, np.float32))

    def test_structure_comes_from_the_header_alone(self):
        stored = encode_safetensors(Weights(layers=(np.zeros(100_000, np.float32),), layered=True, names=("w",)))
        reader = CountingReader(stored)

        structure = read_stored_structure(reader)

        assert structure == Structure(tensors=(TensorSpec("w", (100_000,), "float32"),), layered=True)
        assert structure.parameter_count == 100_000
        assert structure.byte_size == 400_000
        assert sum(length for _, length in reader.ranges) < 200

    def test_tensors_are_read_one_range_each(self, tmp_path):
        path = tmp_path / "model.safetensors"
        path.write_bytes(encode_safetensors(state_dict()))
        reader = CountingReader(path.read_bytes())
        source = parse_safetensors(reader)
        reader.ranges.clear()

        bias = source.tensor(1)

        np.testing.assert_array_equal(bias, np.array([0.5, 1.5], np.float16))
        assert reader.ranges == [(reader.size - 4, 4)]
        np.testing.assert_array_equal(
            load_stored(FileRangeReader(path)).layers[0], np.arange(6, dtype=np.float32).reshape(2, 3)
        )

    @pytest.mark.parametrize(
        ("stored", "message"),
        [
            (b"\x01", "not a valid safetensors file: 1 bytes is shorter than the 8-byte header length"),
            (struct.pack("<Q", 10**9) + b"{}", "not a valid safetensors file: a header of 1000000000 bytes"),
            (struct.pack("<Q", 3) + b"{x}", "not a valid safetensors file: the header is not JSON"),
            (raw_safetensors({}), "the weights hold no tensors"),
            (
                raw_safetensors({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0"),
                "tensor 'w' has dtype 'BF16'; supported: F16, F32, F64, I16, I32, I64, I8, U16, U32, U64, U8",
            ),
            (
                raw_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
                "not a valid safetensors file: tensor 'w' of shape [2] and dtype F32 needs 8 bytes, its "
                "data_offsets give 4",
            ),
            (
                raw_safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
                "not a valid safetensors file: the tensors need 4 bytes of data, the file has 8",
            ),
            (
                raw_safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
                "not a valid safetensors file: the data of tensor 'w' starts at 4, expected 0",
            ),
            (
                duplicated(),
                "not a valid safetensors file: tensor 'w' appears twice in the header",
            ),
        ],
    )
    def test_malformed_files_are_refused_naming_the_problem(self, stored, message):
        with pytest.raises(InvalidWeightsError) as error:
            parse_safetensors(stored)

        assert str(error.value).startswith(message)

    def test_s3_objects_are_read_by_ranges(self):
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="weights")
            client.put_object(Bucket="weights", Key="u/1.safetensors", Body=encode_safetensors(state_dict()))

            source = parse_safetensors(S3RangeReader("weights", "u/1.safetensors", client=client))

            assert [tensor.name for tensor in source.structure.tensors] == ["fc.weight", "fc.bias"]
            np.testing.assert_array_equal(source.tensor(1), np.array([0.5, 1.5], np.float16))


class TestNpz:
    def test_round_trip_keeps_names_and_dtypes(self):
        weights = parse_npz(encode_npz(state_dict()))

        assert weights.structure == state_dict().structure

    def test_a_pickled_object_inside_is_refused(self):
        buffer = io.BytesIO()
        np.savez(buffer, w=np.array([{"not": "numbers"}], dtype=object))

        with pytest.raises(InvalidWeightsError) as error:
            parse_npz(buffer.getvalue())

        assert str(error.value) == (
            "the npz holds a Python object array (pickle), which is refused: save plain numeric arrays"
        )

    def test_not_an_npz(self):
        with pytest.raises(InvalidWeightsError, match=r"^not a valid npz file: "):
            parse_npz(b"PK\x03\x04 truncated")

    @pytest.mark.parametrize(
        ("arrays", "document"),
        [
            ({"array": np.array([[1.0, 2.0], [3.0, 4.0]])}, [[1.0, 2.0], [3.0, 4.0]]),
            ({"layer_0": np.array([1, 2]), "layer_1": np.array([0.5])}, [[1, 2], [0.5]]),
        ],
    )
    def test_files_stored_before_safetensors_still_load_as_their_document(self, arrays, document):
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)

        weights = load_stored(BytesRangeReader(buffer.getvalue()))

        assert json.loads(weights_to_json(weights)) == document


class TestValidation:
    def test_nan_is_named_by_tensor(self):
        weights = state_dict()
        bias = weights.layers[1].copy()
        bias[0] = np.nan
        source = parse_safetensors(encode_safetensors(Weights.like(weights, [weights.layers[0], bias])))

        with pytest.raises(InvalidWeightsError) as error:
            check_finite(source)

        assert str(error.value) == "tensor 'fc.bias' contains NaN or infinite values"

    @pytest.mark.parametrize(
        ("layers", "names", "message"),
        [
            (
                (np.zeros((2, 3), np.float32),),
                ("fc.weight",),
                "tensor 'fc.bias' (shape [2], float16) is missing from data",
            ),
            (
                (np.zeros((2, 3), np.float32), np.zeros(2, np.float16), np.zeros(1, np.float32)),
                ("fc.weight", "fc.bias", "extra"),
                "tensor 'extra' of data is not in the model's weights",
            ),
            (
                (np.zeros((3, 2), np.float32), np.zeros(2, np.float16)),
                ("fc.weight", "fc.bias"),
                "tensor 'fc.weight' has shape [3, 2] but the model's weights have shape [2, 3]",
            ),
            (
                (np.zeros((2, 3), np.float64), np.zeros(2, np.float16)),
                ("fc.weight", "fc.bias"),
                "tensor 'fc.weight' has dtype float64 but the model's weights have dtype float32",
            ),
        ],
    )
    def test_structure_mismatch_names_the_tensor(self, layers, names, message):
        upload = parse_safetensors(encode_safetensors(Weights(layers=layers, layered=True, names=names)))

        with pytest.raises(InvalidWeightsError) as error:
            validate_tensors(upload, state_dict().structure)

        assert str(error.value) == message

    def test_an_empty_tensor_is_refused_as_an_empty_json_layer_is(self):
        # Written by the safetensors library: the service's own writer never makes such a file.
        upload = parse_safetensors(safetensors.numpy.save({"a": np.zeros((0, 3), np.float32), "b": np.ones(2)}))

        with pytest.raises(InvalidWeightsError) as error:
            validate_tensors(upload, None)

        assert str(error.value) == "tensor 'a' is empty"

    def test_json_numbers_have_no_dtype_to_compare(self):
        model = parse_weights([[1, 2], [3, 4, 5]]).structure

        check_structure(model, parse_weights([[1.5, 2.5], [3.5, 4.5, 5.5]]).structure, compare_dtypes=False)

        with pytest.raises(InvalidWeightsError, match="layer 0 has dtype float64 but the model's weights have"):
            check_structure(model, parse_weights([[1.5, 2.5], [3.5, 4.5, 5.5]]).structure)
