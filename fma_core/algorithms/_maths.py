"""Numpy primitives the aggregators share: layer groups within a memory budget, streaming weighted mean,
coordinate-wise statistics over stacked groups, pairwise distances.

Updates are read one tensor at a time (``ClientUpdate.weights`` may be a lazy ``fma_core.tensors``
source), and layers are aggregated in consecutive *groups* sized so that the working memory of one group
fits ``AggregationContext.memory_budget_bytes``; the stream is passed over once per group. So peak memory
does not grow with the number of updates N for the means, and is bounded by the budget for the robust
aggregators (which need all N values of a coordinate at once), for any model whose largest layer fits.

Means accumulate in float64; a group whose sum overflows (finite values near ±1.8e308) is passed over again
as a running mean, which cannot, so the mean of finite values is always finite. Each result layer has the
model's dtype when that is a float dtype (float16, float32, float64) and float64 otherwise (a mean of integers
is not an integer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from fma_core.exceptions import ConfigurationError, InvalidWeightsError
from fma_core.serialization import Structure, Weights, check_same_structure
from fma_core.types import AggregationContext, ClientUpdate, UpdateStream

_NO_UPDATES = "there are no updates to aggregate"
_LARGEST = float(np.finfo(np.float64).max)
# Magnitude whose square, summed over many parameters, stays far from float64's largest value.
_SQUARABLE = 1e100

# Working bytes per parameter of a group in a streaming mean: the float64 sum, a float64 copy of the update's
# layer being added (scaled), and the layer as read (at most 8 bytes a value).
MEAN_BYTES_PER_PARAMETER = 24


def robust_bytes_per_parameter(count: int) -> int:
    """Working bytes per parameter of a group for the robust aggregators.

    N float64 rows, plus four float64 values for the statistic's temporaries and result (numpy's median of an
    even count averages two rows; the split result is cast once more).
    """
    return 8 * (count + 4)


def layer_groups(structure: Structure, *, bytes_per_parameter: int, budget: int | None) -> list[tuple[int, ...]]:
    """Consecutive layer indexes grouped so that each group's parameters * ``bytes_per_parameter`` <= ``budget``.

    Raises
    ------
    ConfigurationError
        A single layer does not fit the budget (the message names it and the setting to raise).
    """
    indexes = range(len(structure.tensors))
    if budget is None:
        return [tuple(indexes)]
    groups: list[tuple[int, ...]] = []
    current: list[int] = []
    used = 0
    for index in indexes:
        tensor = structure.tensors[index]
        cost = tensor.size * bytes_per_parameter
        if cost > budget:
            raise ConfigurationError(
                f"{tensor.describe()} ({tensor.size} parameters) needs {cost} bytes to aggregate, more than "
                f'AGGREGATOR_SETTINGS["memory_budget_bytes"] = {budget}; raise the budget'
            )
        if current and used + cost > budget:
            groups.append(tuple(current))
            current, used = [], 0
        current.append(index)
        used += cost
    groups.append(tuple(current))
    return groups


def _result_dtypes(template: Structure, model: Structure | None) -> list[np.dtype]:
    reference = model if model is not None and len(model.tensors) == len(template.tensors) else template
    dtypes = [np.dtype(tensor.dtype) for tensor in reference.tensors]
    return [dtype if dtype.kind == "f" else np.dtype(np.float64) for dtype in dtypes]


class LayerGroups:
    """The updates of a stream, layer group by layer group: one pass over the stream per group.

    The first update is read on construction for the structure (every other update must share it; checked
    during the first pass) and the groups; ``passes()`` then yields each group with an iterator of updates.
    """

    def __init__(self, updates: UpdateStream, context: AggregationContext | None, bytes_per_parameter: int) -> None:
        self._updates = updates
        self._rest = iter(updates)
        first = next(self._rest, None)
        if first is None:
            raise InvalidWeightsError(_NO_UPDATES)
        self.template = first.weights.structure
        model = context.structure if context is not None else None
        self.dtypes = _result_dtypes(self.template, model)
        budget = context.memory_budget_bytes if context is not None else None
        self.groups = layer_groups(self.template, bytes_per_parameter=bytes_per_parameter, budget=budget)
        # Held in a list so that the first pass can hand it over without keeping a reference of its own.
        self._first = [first]

    def _first_pass(self) -> Iterator[ClientUpdate]:
        yield self._first.pop()
        for update in self._rest:
            check_same_structure(self.template, update.weights.structure)
            yield update

    def passes(self) -> Iterator[tuple[tuple[int, ...], Iterator[ClientUpdate]]]:
        for number, group in enumerate(self.groups):
            yield group, self._first_pass() if number == 0 else iter(self._updates)

    def stacked(self) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """Each group as an (N, G) float64 matrix: row i holds update i's layers of the group, flattened and joined.

        Every group's matrix is a view of one buffer sized for the largest group, which the caller may reorder in
        place: allocating per group would hold the previous group's matrix while the next one is allocated.
        """
        count = len(self._updates)
        sizes = [sum(self.template.tensors[i].size for i in group) for group in self.groups]
        buffer = np.empty(count * max(sizes), dtype=np.float64)
        for (group, updates), size in zip(self.passes(), sizes, strict=True):
            rows = buffer[: count * size].reshape(count, size)
            for row, update in enumerate(updates):
                offset = 0
                for index in group:
                    layer = update.weights.tensor(index)
                    rows[row, offset : offset + layer.size] = layer.ravel()
                    offset += layer.size
            yield group, rows

    def split(self, group: Sequence[int], vector: np.ndarray) -> list[np.ndarray]:
        """``vector`` (one value per parameter of ``group``) cut into the group's layers, in the result dtypes."""
        layers = []
        offset = 0
        for index in group:
            tensor = self.template.tensors[index]
            layers.append(self.cast(index, vector[offset : offset + tensor.size].reshape(tensor.shape)))
            offset += tensor.size
        return layers

    def cast(self, index: int, layer: np.ndarray) -> np.ndarray:
        """A float64 result layer in the result dtype of layer ``index``."""
        dtype = self.dtypes[index]
        return layer if layer.dtype == dtype else layer.astype(dtype)

    def weights(self, layers: Sequence[np.ndarray]) -> Weights:
        return Weights.like(self.template, layers)


def weighted_mean(
    updates: UpdateStream,
    weight: Callable[[ClientUpdate], float] | None = None,
    *,
    context: AggregationContext | None = None,
    cast: bool = True,
) -> Weights:
    """Mean of the updates' weights, layer by layer, one group of layers at a time.

    Parameters
    ----------
    updates : UpdateStream
        Iterated once per layer group (exactly once when every layer fits one group).
    weight : callable, optional
        Positive weight of each update; equal weights when omitted.
    context : AggregationContext, optional
        The model's structure (result dtypes) and the memory budget.
    cast : bool, default True
        Give the result the model's float dtypes; False keeps float64 (for further computation).

    Returns
    -------
    Weights
        The mean, with the structure of the first update.

    Raises
    ------
    InvalidWeightsError
        No updates, or an update whose layers differ in number or shape from the first one's.
    """
    grouped = LayerGroups(updates, context, MEAN_BYTES_PER_PARAMETER)
    result: list[np.ndarray] = [np.empty(0)] * len(grouped.template.tensors)
    for group, stream in grouped.passes():
        means = _summed_mean(grouped, group, stream, weight)
        if not all(np.isfinite(mean).all() for mean in means):
            # The sum overflowed (finite values near ±1.8e308, or large weights): the group once more, as a
            # running mean, which cannot.
            del means
            means = _running_mean(grouped, group, iter(updates), weight)
        for running, index in zip(means, group, strict=True):
            result[index] = grouped.cast(index, running) if cast else running
        # Released before the next group's accumulators are allocated, not after.
        del means
    return grouped.weights(result)


def _summed_mean(
    grouped: LayerGroups,
    group: Sequence[int],
    stream: Iterator[ClientUpdate],
    weight: Callable[[ClientUpdate], float] | None,
) -> list[np.ndarray]:
    """The group's weighted sums divided by the total weight: one operation per update and value."""
    # The accumulators are the only arrays of the group kept across updates; no update outlives its turn.
    sums = [np.zeros(grouped.template.tensors[index].shape, dtype=np.float64) for index in group]
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for update in stream:
            # A float factor keeps integer layers from overflowing when scaled by a large example count.
            factor = 1.0 if weight is None else float(weight(update))
            for running, index in zip(sums, group, strict=True):
                layer = update.weights.tensor(index)
                # Scaling by 1.0 would allocate a layer-sized temporary for nothing.
                running += layer if factor == 1.0 else factor * layer
            total += factor
        for running in sums:
            running /= total
    return sums


def _running_mean(
    grouped: LayerGroups,
    group: Sequence[int],
    stream: Iterator[ClientUpdate],
    weight: Callable[[ClientUpdate], float] | None,
) -> list[np.ndarray]:
    """The group's weighted mean as ``m = (1 - s) m + s x`` with ``s = w / (total so far)``: never overflows.

    A convex combination of finite values is finite in exact arithmetic; rounding can still carry it one step
    past the largest float64, which the clip takes back. NaN is not clipped: the workflow's result check finds it.
    """
    means = [np.zeros(grouped.template.tensors[index].shape, dtype=np.float64) for index in group]
    total = 0.0
    for update in stream:
        factor = 1.0 if weight is None else float(weight(update))
        total += factor
        share = factor / total
        for running, index in zip(means, group, strict=True):
            layer = update.weights.tensor(index)
            if share == 1.0:
                running[...] = layer
                continue
            running *= 1.0 - share
            running += share * layer
            np.clip(running, -_LARGEST, _LARGEST, out=running)
    return means


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """Median of each column; reorders ``rows`` in place rather than copying N·P values."""
    count = rows.shape[0]
    middle = count // 2
    if count % 2:
        rows.partition(middle, axis=0)
        return rows[middle].copy()
    # numpy's median of an even count adds the two middle values first, which overflows near ±1.8e308.
    rows.partition([middle - 1, middle], axis=0)
    lower, upper = rows[middle - 1], rows[middle]
    with np.errstate(over="ignore"):
        median = (lower + upper) / 2
    overflowed = np.isinf(median)
    median[overflowed] = lower[overflowed] / 2 + upper[overflowed] / 2
    return median


def coordinate_trimmed_mean(rows: np.ndarray, trim: int) -> np.ndarray:
    """Mean of each column without its ``trim`` smallest and ``trim`` largest values; reorders ``rows`` in place."""
    count = rows.shape[0]
    if trim:
        # A partial sort around both cut points leaves exactly the kept values between them.
        rows.partition([trim, count - trim - 1], axis=0)
    kept = rows[trim : count - trim]
    with np.errstate(over="ignore"):
        mean = kept.mean(axis=0)
    overflowed = np.isinf(mean)
    if overflowed.any():
        # The sum overflowed: the values divided by their count first add up to the mean, which rounding can
        # carry one step past the largest float64 only; the clip takes that step back.
        columns = kept[:, overflowed] / kept.shape[0]
        with np.errstate(over="ignore"):
            mean[overflowed] = np.clip(columns.sum(axis=0), -_LARGEST, _LARGEST)
    return mean


def coordinate_statistic(
    updates: UpdateStream, context: AggregationContext, statistic: Callable[[np.ndarray], np.ndarray]
) -> Weights:
    """``statistic`` of every coordinate over the updates (an (N, G) matrix in, G values out), group by group."""
    grouped = LayerGroups(updates, context, robust_bytes_per_parameter(len(updates)))
    result: list[np.ndarray] = [np.empty(0)] * len(grouped.template.tensors)
    for group, rows in grouped.stacked():
        for index, layer in zip(group, grouped.split(group, statistic(rows)), strict=True):
            result[index] = layer
    return grouped.weights(result)


def pairwise_squared_distances(rows: np.ndarray) -> np.ndarray:
    """(N, N) squared Euclidean distances between rows, from one matrix product instead of N² row differences."""
    norms = np.einsum("ij,ij->i", rows, rows)
    distances = norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T)
    # Rounding can make the distance of (nearly) equal rows slightly negative.
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return distances


def update_distances(updates: UpdateStream, context: AggregationContext) -> np.ndarray:
    """(N, N) squared Euclidean distances between whole updates: the sum of each layer group's distances.

    Values beyond ``_SQUARABLE`` would square to inf: the updates are then measured in units of their largest
    magnitude, so the distances are exact up to one common positive factor, which keeps their order (all Krum
    needs) and keeps them finite.
    """
    grouped = LayerGroups(updates, context, robust_bytes_per_parameter(len(updates)))
    distances = np.zeros((len(updates), len(updates)))
    unit = 1.0
    for _, rows in grouped.stacked():
        # Two reductions instead of np.abs(rows).max(): that would copy the N x G rows the budget counts once.
        largest = max(float(rows.max(initial=0.0)), -float(rows.min(initial=0.0)))
        if largest > _SQUARABLE and largest > unit:
            distances *= (unit / largest) ** 2
            unit = largest
        if unit != 1.0:
            rows /= unit
        distances += pairwise_squared_distances(rows)
    return distances


class SelectedUpdates:
    """The updates of a stream at the given positions (in stream order), as a stream of their own."""

    def __init__(self, updates: UpdateStream, positions: Sequence[int]) -> None:
        self._updates = updates
        self._positions = frozenset(positions)

    def __len__(self) -> int:
        return len(self._positions)

    def __iter__(self) -> Iterator[ClientUpdate]:
        return (update for position, update in enumerate(self._updates) if position in self._positions)
