"""The in-memory update stream."""

from fma_core.types import ClientUpdate, InMemoryUpdates
from tests.fma_core.algorithms.support import single


def test_in_memory_updates_can_be_iterated_twice():
    items = [ClientUpdate(weights=single([1.0])), ClientUpdate(weights=single([2.0]), num_examples=4, staleness=2)]
    stream = InMemoryUpdates(items)

    assert len(stream) == 2
    assert list(stream) == items
    assert list(stream) == items
