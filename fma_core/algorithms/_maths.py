"""Numpy primitives the aggregators share: streaming weighted mean, flat stacking, coordinate-wise statistics.

Mean-type aggregators use ``weighted_mean``: one float64 accumulator per layer and one update in memory at a
time, so memory is O(P) whatever the number of updates N. Robust aggregators need every update at once and
use ``stack``: a single preallocated (N, P) float64 matrix, worked on in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from fma_core.exceptions import InvalidWeightsError
from fma_core.serialization import Weights, check_same_structure
from fma_core.types import ClientUpdate, UpdateStream

_NO_UPDATES = "there are no updates to aggregate"


def weighted_mean(updates: Iterable[ClientUpdate], weight: Callable[[ClientUpdate], float] | None = None) -> Weights:
    """Mean of the updates' weights, layer by layer, in one pass over ``updates``.

    Parameters
    ----------
    updates : iterable of ClientUpdate
        Iterated exactly once.
    weight : callable, optional
        Positive weight of each update; equal weights when omitted.

    Returns
    -------
    Weights
        float64 layers with the structure of the first update.

    Raises
    ------
    InvalidWeightsError
        No updates, or an update whose layers differ in number or shape from the first one's.
    """
    # The accumulator doubles as the structure every update must match, so no update outlives its turn.
    sums: Weights | None = None
    total = 0.0
    for update in updates:
        if sums is None:
            sums = Weights.like(update.weights, [np.zeros(shape, dtype=np.float64) for shape in update.weights.shapes])
        else:
            check_same_structure(sums, update.weights)
        # A float factor keeps integer layers from overflowing when scaled by a large example count.
        factor = 1.0 if weight is None else float(weight(update))
        for running, layer in zip(sums.layers, update.weights.layers, strict=True):
            # Scaling by 1.0 would allocate a P-sized temporary for nothing.
            running += layer if factor == 1.0 else factor * layer
        total += factor
    if sums is None:
        raise InvalidWeightsError(_NO_UPDATES)
    for running in sums.layers:
        running /= total
    return sums


def stack(updates: UpdateStream) -> tuple[Weights, np.ndarray]:
    """All updates as rows of one (N, P) float64 matrix, each row the update's layers flattened and joined.

    Returns
    -------
    (Weights, ndarray)
        The first update (the structure template for ``unflatten``) and the matrix.

    Raises
    ------
    InvalidWeightsError
        No updates, or updates that differ in structure.
    """
    rows = None
    template: Weights | None = None
    for index, update in enumerate(updates):
        if template is None:
            template = update.weights
            rows = np.empty((len(updates), template.parameter_count), dtype=np.float64)
        else:
            check_same_structure(template, update.weights)
        offset = 0
        for layer in update.weights.layers:
            rows[index, offset : offset + layer.size] = layer.ravel()
            offset += layer.size
    if template is None or rows is None:
        raise InvalidWeightsError(_NO_UPDATES)
    return template, rows


def unflatten(template: Weights, vector: np.ndarray) -> Weights:
    """``vector`` (length P) cut back into ``template``'s layers and shapes."""
    layers = []
    offset = 0
    for layer in template.layers:
        layers.append(vector[offset : offset + layer.size].reshape(layer.shape))
        offset += layer.size
    return Weights.like(template, layers)


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """Median of each column; reorders ``rows`` in place rather than copying N·P values."""
    return np.median(rows, axis=0, overwrite_input=True)


def coordinate_trimmed_mean(rows: np.ndarray, trim: int) -> np.ndarray:
    """Mean of each column without its ``trim`` smallest and ``trim`` largest values; reorders ``rows`` in place."""
    count = rows.shape[0]
    if trim:
        # A partial sort around both cut points leaves exactly the kept values between them.
        rows.partition([trim, count - trim - 1], axis=0)
    return rows[trim : count - trim].mean(axis=0)


def pairwise_squared_distances(rows: np.ndarray) -> np.ndarray:
    """(N, N) squared Euclidean distances between rows, from one matrix product instead of N² row differences."""
    norms = np.einsum("ij,ij->i", rows, rows)
    distances = norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T)
    # Rounding can make the distance of (nearly) equal rows slightly negative.
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return distances
