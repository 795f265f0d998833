"""The shared numpy primitives, against direct numpy references."""

import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fma_core.algorithms import _maths
from fma_core.exceptions import ConfigurationError, InvalidWeightsError
from fma_core.serialization import Weights
from fma_core.types import ClientUpdate, InMemoryUpdates
from tests.fma_core.algorithms.support import CountingUpdates, assert_weights_equal, layered, single, updates

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


class TestWeightedMean:
    def test_equal_weights_layer_by_layer(self):
        # Prepare
        stream = updates(layered([1, 2], [[3]]), layered([3, 4], [[5]]), layered([5, 9], [[10]]))

        # Execute
        mean = _maths.weighted_mean(stream)

        # Assert: (1+3+5)/3 = 3, (2+4+9)/3 = 5, (3+5+10)/3 = 6
        assert_weights_equal(mean, layered([3.0, 5.0], [[6.0]]))
        assert mean.layers[0].dtype == np.float64

    def test_weights_each_update(self):
        stream = updates(single([0.0, 10.0]), single([4.0, 2.0]), num_examples=[1, 3])

        mean = _maths.weighted_mean(stream, lambda update: update.num_examples)

        # (1*0 + 3*4)/4 = 3, (1*10 + 3*2)/4 = 4
        assert_weights_equal(mean, single([3.0, 4.0]))

    def test_iterates_the_stream_exactly_once(self):
        stream = CountingUpdates(updates(single([1.0]), single([2.0]), single([3.0])))

        _maths.weighted_mean(stream)

        assert (stream.iterations, stream.loaded) == (1, 3)

    def test_no_updates(self):
        with pytest.raises(InvalidWeightsError, match=r"^there are no updates to aggregate$"):
            _maths.weighted_mean(InMemoryUpdates([]))

    def test_update_of_another_structure_names_the_layer(self):
        stream = updates(layered([1, 2], [3]), layered([1, 2], [3, 4]))

        with pytest.raises(InvalidWeightsError) as error:
            _maths.weighted_mean(stream)

        assert str(error.value) == "layer 1 has shape [2] but the model's weights have shape [1]"

    @given(
        st.integers(min_value=1, max_value=6).flatmap(
            lambda count: st.tuples(
                hnp.arrays(
                    np.float64, st.tuples(st.just(count), st.integers(1, 5), st.integers(1, 4)), elements=finite
                ),
                st.lists(st.integers(1, 1000), min_size=count, max_size=count),
            )
        )
    )
    def test_matches_numpy_average(self, case):
        matrices, examples = case
        stream = updates(*(single(matrix) for matrix in matrices), num_examples=examples)

        mean = _maths.weighted_mean(stream, lambda update: update.num_examples)

        np.testing.assert_allclose(mean.layers[0], np.average(matrices, axis=0, weights=examples), atol=1e-6)


class TestLayerGroups:
    def test_stacked_rows_are_flattened_updates_and_split_restores_them(self):
        first = layered([[1, 2], [3, 4]], [5])
        grouped = _maths.LayerGroups(updates(first, layered([[6, 7], [8, 9]], [10])), None, 16)

        ((group, rows),) = list(grouped.stacked())

        assert group == (0, 1)
        np.testing.assert_array_equal(rows, [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
        assert rows.dtype == np.float64
        restored = grouped.weights(grouped.split(group, rows[1]))
        assert_weights_equal(restored, layered([[6.0, 7.0], [8.0, 9.0]], [10.0]))

    def test_groups_fit_the_budget_in_layer_order(self):
        structure = layered(np.zeros(4), np.zeros(2), np.zeros(3), np.zeros(1)).structure

        # 8 bytes a parameter, 48 bytes: at most 6 parameters a group.
        assert _maths.layer_groups(structure, bytes_per_parameter=8, budget=48) == [(0, 1), (2, 3)]
        assert _maths.layer_groups(structure, bytes_per_parameter=8, budget=None) == [(0, 1, 2, 3)]
        assert _maths.layer_groups(structure, bytes_per_parameter=8, budget=32) == [(0,), (1,), (2, 3)]

    def test_a_layer_larger_than_the_budget_is_named(self):
        structure = Weights(layers=(np.zeros(2), np.zeros(10)), layered=True, names=("bias", "weight")).structure

        with pytest.raises(ConfigurationError) as error:
            _maths.layer_groups(structure, bytes_per_parameter=8, budget=40)

        assert str(error.value) == (
            "tensor 'weight' (10 parameters) needs 80 bytes to aggregate, more than "
            'AGGREGATOR_SETTINGS["memory_budget_bytes"] = 40; raise the budget'
        )

    def test_no_updates(self):
        with pytest.raises(InvalidWeightsError, match=r"^there are no updates to aggregate$"):
            _maths.LayerGroups(InMemoryUpdates([]), None, 8)

    def test_update_of_another_structure(self):
        grouped = _maths.LayerGroups(updates(layered([1, 2]), layered([1, 2], [3])), None, 8)

        with pytest.raises(InvalidWeightsError, match=r"^expected 1 layers like the model's weights, got 2$"):
            list(grouped.stacked())


class TestCoordinateStatistics:
    @given(hnp.arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 6)), elements=finite))
    def test_median_matches_numpy(self, rows):
        np.testing.assert_array_equal(_maths.coordinate_median(rows.copy()), np.median(rows, axis=0))

    @given(
        hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 6)), elements=finite),
        st.floats(min_value=0, max_value=0.49),
    )
    def test_trimmed_mean_matches_sorted_reference(self, rows, fraction):
        trim = int(fraction * rows.shape[0])
        reference = np.sort(rows, axis=0)[trim : rows.shape[0] - trim].mean(axis=0)

        np.testing.assert_allclose(_maths.coordinate_trimmed_mean(rows.copy(), trim), reference, rtol=1e-12, atol=1e-6)

    def test_trimmed_mean_drops_the_extremes_of_every_coordinate(self):
        rows = np.array([[1.0, -50.0], [2.0, 4.0], [3.0, 6.0], [99.0, 5.0]])

        # Column 0 keeps 2 and 3, column 1 keeps 4 and 5.
        np.testing.assert_array_equal(_maths.coordinate_trimmed_mean(rows, 1), [2.5, 4.5])


class TestPairwiseSquaredDistances:
    def test_hand_computed(self):
        rows = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])

        np.testing.assert_allclose(
            _maths.pairwise_squared_distances(rows), [[0, 25, 1], [25, 0, 18], [1, 18, 0]], atol=1e-12
        )

    @given(hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=st.floats(-100, 100)))
    def test_matches_row_differences(self, rows):
        reference = ((rows[:, None, :] - rows[None, :, :]) ** 2).sum(axis=2)

        distances = _maths.pairwise_squared_distances(rows)

        np.testing.assert_allclose(distances, reference, atol=1e-6 * max(1.0, float(np.abs(rows).max()) ** 2))
        assert (distances >= 0).all()
        np.testing.assert_array_equal(np.diag(distances), 0)


class LiveUpdates:
    """A stream that builds each update when asked and records how many built updates were alive at once."""

    def __init__(self, count: int, size: int) -> None:
        self._count = count
        self._size = size
        self.alive = 0
        self.most_alive = 0

    def __len__(self) -> int:
        return self._count

    def _released(self) -> None:
        self.alive -= 1

    def __iter__(self):
        for index in range(self._count):
            layer = np.full(self._size, float(index))
            weakref.finalize(layer, self._released)
            self.alive += 1
            self.most_alive = max(self.most_alive, self.alive)
            yield ClientUpdate(weights=Weights(layers=(layer,), layered=False))
            del layer


def test_weighted_mean_keeps_no_update_beyond_its_turn():
    # Prepare
    stream = LiveUpdates(count=20, size=10)

    # Execute
    mean = _maths.weighted_mean(stream)

    # Assert: the update being added and the one being loaded, never more.
    np.testing.assert_array_equal(mean.layers[0], np.full(10, 9.5))
    assert stream.most_alive <= 2
