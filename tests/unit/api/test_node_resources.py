"""What a new node offers, and the sizes it refuses before anything starts."""

from __future__ import annotations

import pytest

from manta._private.api.node_resources import MIN_OBJECT_STORE_BYTES, node_resources


def test_object_store_memory_is_offered_as_given() -> None:
    offered = node_resources(2, 0, None, 100 * 1024 * 1024)
    assert offered["object_store_memory"] == 100 * 1024 * 1024
    assert offered["CPU"] == 2.0


@pytest.mark.parametrize("size", [1, 4096, MIN_OBJECT_STORE_BYTES - 1])
def test_a_too_small_object_store_is_refused_naming_the_minimum(size: int) -> None:
    with pytest.raises(
        ValueError, match=f"at {size} bytes, but the minimum allowed is {MIN_OBJECT_STORE_BYTES}"
    ):
        node_resources(1, 0, None, size)


def test_a_float_size_is_taken_in_whole_bytes() -> None:
    # As in Ray: object_store_memory=1e8 is a size like any other.
    assert node_resources(1, 0, None, 1e8)["object_store_memory"] == 100_000_000
    assert node_resources(1, 0, None, 1e8 + 0.5)["object_store_memory"] == 100_000_000


@pytest.mark.parametrize("size", [0, -5, -1e9, float("nan"), float("inf"), True, "1GB"])
def test_a_non_size_is_refused(size: object) -> None:
    with pytest.raises(ValueError, match="must be a positive number of bytes"):
        node_resources(1, 0, None, size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("num_cpus", "num_gpus", "resources", "message"),
    [
        (float("nan"), 0, None, "num_cpus must be a non-negative number"),
        (float("inf"), 0, None, "num_cpus must be a non-negative number"),
        (1, 1.5, None, "num_gpus must be a whole number"),
        (1, 0, {"disk": float("inf")}, "resource 'disk' must be a non-negative number"),
    ],
)
def test_amounts_a_node_could_not_use_are_refused(num_cpus, num_gpus, resources, message) -> None:
    with pytest.raises(ValueError, match=message):
        node_resources(num_cpus, num_gpus, resources, 100 * 1024 * 1024)
