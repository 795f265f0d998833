"""Builders of weights and update streams for the algorithm tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from fma_core.serialization import Weights
from fma_core.types import ClientUpdate, InMemoryUpdates


def single(values) -> Weights:
    """Weights that were one array in JSON."""
    return Weights(layers=(np.asarray(values),), layered=False)


def layered(*layers) -> Weights:
    """Weights that were a list of layers in JSON."""
    return Weights(layers=tuple(np.asarray(layer) for layer in layers), layered=True)


def updates(*weights: Weights, num_examples: Sequence[int] | None = None, staleness: Sequence[int] | None = None):
    """An in-memory stream of the given weights with optional per-update example counts and staleness."""
    count = len(weights)
    return InMemoryUpdates(
        [
            ClientUpdate(weights=item, num_examples=examples, staleness=stale)
            for item, examples, stale in zip(
                weights, num_examples or [1] * count, staleness or [0] * count, strict=True
            )
        ]
    )


class CountingUpdates:
    """A stream that records how often it was iterated and how many updates it handed out."""

    def __init__(self, stream: InMemoryUpdates) -> None:
        self._stream = stream
        self.iterations = 0
        self.loaded = 0

    def __len__(self) -> int:
        return len(self._stream)

    def __iter__(self) -> Iterator[ClientUpdate]:
        self.iterations += 1
        for update in self._stream:
            self.loaded += 1
            yield update


def assert_weights_equal(actual: Weights, expected: Weights) -> None:
    """Same structure flag, same shapes, values equal up to float rounding."""
    assert actual.layered == expected.layered
    assert actual.shapes == expected.shapes
    for got, want in zip(actual.layers, expected.layers, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
