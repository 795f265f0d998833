"""Aggregation layer group by layer group: the same result as one group, in the model's dtypes, within the budget."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from fma_core.algorithms import call_aggregator
from fma_core.algorithms._maths import MEAN_BYTES_PER_PARAMETER, layer_groups, robust_bytes_per_parameter
from fma_core.exceptions import ConfigurationError
from fma_core.serialization import Weights
from fma_core.tensors import FileRangeReader, SafetensorsTensors, encode_safetensors
from fma_core.types import AggregationContext, ClientUpdate
from tests.fma_core.algorithms.support import layered, updates

SHAPES = [(3, 4), (6,), (2, 5), (4,), (8,)]
COUNT = 7
AGGREGATORS = [
    ("avg_values_if_data", None),
    ("average_layers", None),
    ("fed_avg", None),
    ("fedbuff", None),
    ("fed_median", None),
    ("fed_trimmed_mean", {"beta": 0.2}),
    ("krum", {"f": 1}),
    ("multi_krum", {"f": 1, "m": 3}),
]


def float32_updates(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = [layered(*(rng.standard_normal(shape).astype(np.float32) for shape in SHAPES)) for _ in range(count)]
    return updates(*weights, num_examples=list(range(1, count + 1)), staleness=[index % 3 for index in range(count)])


@pytest.mark.parametrize(("name", "args"), AGGREGATORS)
def test_many_layer_groups_give_the_one_group_result(name, args):
    # Prepare: a budget that holds 12 parameters a group (the largest layer), so the layers make 4 groups.
    stream = float32_updates(COUNT)
    robust = name not in {"avg_values_if_data", "average_layers", "fed_avg", "fedbuff"}
    per_parameter = robust_bytes_per_parameter(COUNT) if robust else MEAN_BYTES_PER_PARAMETER
    budget = per_parameter * 12
    template = next(iter(stream)).weights.structure
    assert layer_groups(template, bytes_per_parameter=per_parameter, budget=budget) == [(0,), (1,), (2,), (3, 4)]

    # Execute
    whole = call_aggregator(name, stream, AggregationContext(), args).weights
    grouped = call_aggregator(name, stream, AggregationContext(memory_budget_bytes=budget), args).weights

    # Assert
    assert grouped.shapes == whole.shapes
    for got, want in zip(grouped.layers, whole.layers, strict=True):
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6)


class TestResultDtype:
    def test_float16_updates_give_float16(self):
        stream = updates(layered(np.array([1.0, 2.0], np.float16)), layered(np.array([2.0, 3.0], np.float16)))

        result = call_aggregator("fed_avg", stream, AggregationContext(), None).weights

        assert result.layers[0].dtype == np.float16
        np.testing.assert_array_equal(result.layers[0], np.array([1.5, 2.5], np.float16))

    def test_integer_layers_give_float64(self):
        result = call_aggregator("fed_median", updates(layered([1, 2]), layered([2, 4])), AggregationContext(), None)

        assert result.weights.layers[0].dtype == np.float64
        assert result.weights.layers[0].tolist() == [1.5, 3.0]

    def test_the_models_dtype_wins_over_json_numbers(self):
        # JSON updates arrive as float64; the model was created from float32 weights.
        model = layered(np.zeros(2, np.float32)).structure
        stream = updates(layered([1.0, 2.0]), layered([3.0, 4.0]))

        result = call_aggregator("avg_values_if_data", stream, AggregationContext(structure=model), None)

        assert result.weights.layers[0].dtype == np.float32
        assert result.weights.layers[0].tolist() == [2.0, 3.0]

    def test_fedopt_steps_in_float64_and_returns_the_models_dtype(self):
        current = layered(np.array([0.0, 0.0], np.float32))
        stream = updates(layered(np.array([1.0, 2.0], np.float32)))

        result = call_aggregator("fed_adam", stream, AggregationContext(current=current), None)

        assert result.weights.layers[0].dtype == np.float32
        assert all(layer.dtype == np.float64 for layer in result.state.layers)


def test_a_layer_too_large_for_the_budget_fails_naming_it():
    stream = updates(layered(np.zeros(100)), layered(np.zeros(100)))

    with pytest.raises(ConfigurationError, match=r"^layer 0 \(100 parameters\) needs 2400 bytes to aggregate"):
        call_aggregator("fed_avg", stream, AggregationContext(memory_budget_bytes=1000), None)


class StoredUpdates:
    """Updates in safetensors files on disk, opened when reached and read a tensor at a time (as the workflow)."""

    def __init__(self, paths) -> None:
        self._paths = list(paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self):
        for path in self._paths:
            yield ClientUpdate(weights=SafetensorsTensors(FileRangeReader(path)))


LAYERS, LAYER_SIZE = 8, 4096
BUDGET = 2 * 1024 * 1024
RESULT_BYTES = LAYERS * LAYER_SIZE * 4
# Python objects, headers and numpy's bookkeeping besides the arrays the budget counts.
SLACK = 128 * 1024


def peak_bytes(tmp_path, name: str, args, count: int) -> int:
    folder = tmp_path / f"{name}-{count}"
    folder.mkdir()
    rng = np.random.default_rng(count)
    for index in range(count):
        layers = tuple(rng.standard_normal(LAYER_SIZE).astype(np.float32) for _ in range(LAYERS))
        (folder / f"{index}.safetensors").write_bytes(encode_safetensors(Weights(layers=layers, layered=True)))
    stream = StoredUpdates(sorted(folder.iterdir()))
    context = AggregationContext(memory_budget_bytes=BUDGET)
    # Once beforehand, so that what numpy allocates on first use is not counted.
    call_aggregator(name, updates(*(layered([float(i)]) for i in range(5))), AggregationContext(), args)
    tracemalloc.start()
    try:
        result = call_aggregator(name, stream, context, args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.weights.parameter_count == LAYERS * LAYER_SIZE
    return peak


@pytest.mark.parametrize(("name", "args"), [("fed_avg", None), ("fed_median", None), ("multi_krum", {"f": 1})])
def test_peak_memory_stays_within_the_budget_whatever_the_number_of_updates(tmp_path, name, args):
    # 32 updates are 4 MB as float32 and 8 MB as float64: holding them would be far above the bound; the
    # median of 32 takes a layer a group, of 5 the whole model in one.
    peaks = {count: peak_bytes(tmp_path, name, args, count) for count in (5, 32)}

    for count, peak in peaks.items():
        assert peak <= BUDGET + RESULT_BYTES + SLACK, f"{name} over {count} updates peaked at {peak} bytes"


@pytest.mark.parametrize(("name", "args"), [("krum", {"f": 1}), ("multi_krum", {"f": 1})])
def test_krum_holds_a_full_group_once(tmp_path, name, args):
    # One layer and a budget that fits it exactly: the stacked rows fill the budget, so any copy of them
    # (to measure their largest magnitude, say) would show as a peak near twice the budget.
    count, size = 16, 32_768
    folder = tmp_path / name
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(count):
        layer = rng.standard_normal(size).astype(np.float32)
        (folder / f"{index}.safetensors").write_bytes(encode_safetensors(Weights(layers=(layer,), layered=True)))
    budget = robust_bytes_per_parameter(count) * size
    call_aggregator(name, updates(*(layered([float(i)]) for i in range(5))), AggregationContext(), args)
    tracemalloc.start()
    try:
        call_aggregator(
            name, StoredUpdates(sorted(folder.iterdir())), AggregationContext(memory_budget_bytes=budget), args
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak <= budget + size * 4 + SLACK
