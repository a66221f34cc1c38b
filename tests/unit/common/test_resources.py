"""Resource arithmetic: exact fractions, GPU devices, CPU lending, feasibility."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.resources import (
    PRECISION,
    Allocation,
    NodeResources,
    from_unit_map,
    from_units,
    to_unit_map,
    to_units,
    validate_request,
)


def units(**amounts: float) -> dict[str, int]:
    return to_unit_map(amounts)


def test_unit_conversion() -> None:
    assert to_units(0.1) == PRECISION // 10
    assert from_units(to_units(2.5)) == 2.5
    assert to_unit_map({"CPU": 1, "GPU": 0, "x": 0.00001}) == {"CPU": PRECISION}
    assert from_unit_map({"CPU": 15_000}) == {"CPU": 1.5}


def test_ten_tenths_of_a_cpu_fill_exactly_one() -> None:
    node = NodeResources({"CPU": 1})
    leases = [node.allocate(units(CPU=0.1)) for _ in range(10)]
    assert all(lease is not None for lease in leases)
    assert node.available["CPU"] == 0
    assert node.available_amounts() == {"CPU": 0.0}
    assert node.allocate(units(CPU=0.1)) is None
    for lease in leases:
        assert lease is not None
        node.release(lease)
    assert node.available == node.total
    assert node.available_amounts() == {"CPU": 1.0}


def test_allocation_reports_amounts() -> None:
    node = NodeResources({"CPU": 4, "custom": 2})
    lease = node.allocate(units(CPU=1.5, custom=1))
    assert lease is not None
    assert lease.amounts() == {"CPU": 1.5, "custom": 1.0}
    assert node.available_amounts() == {"CPU": 2.5, "custom": 1.0}
    assert node.total_amounts() == {"CPU": 4.0, "custom": 2.0}


def test_request_for_a_missing_resource_does_not_fit() -> None:
    node = NodeResources({"CPU": 4})
    assert not node.fits(units(TPU=1))
    assert node.allocate(units(TPU=1)) is None
    assert node.available == node.total


def test_fractional_gpus_share_one_device() -> None:
    node = NodeResources({"GPU": 2})
    a = node.allocate(units(GPU=0.5))
    b = node.allocate(units(GPU=0.5))
    assert a is not None and b is not None
    # Packed onto the fullest device that still fits, leaving device 1 whole.
    assert a.instance_ids() == {"GPU": ["0"]}
    assert b.instance_ids() == {"GPU": ["0"]}
    whole = node.allocate(units(GPU=1))
    assert whole is not None
    assert whole.instance_ids() == {"GPU": ["1"]}
    assert node.allocate(units(GPU=0.1)) is None


def test_whole_gpus_take_whole_devices() -> None:
    node = NodeResources({"GPU": 3})
    frac = node.allocate(units(GPU=0.25))
    assert frac is not None and frac.instance_ids() == {"GPU": ["0"]}
    # 2.75 GPUs are available, but only two whole devices: a request for 2 takes both.
    two = node.allocate(units(GPU=2))
    assert two is not None
    assert two.instance_ids() == {"GPU": ["1", "2"]}
    node.release(two)
    node.release(frac)
    assert node.available == node.total
    assert node.devices["GPU"] == [PRECISION] * 3


def test_whole_gpu_refused_when_every_device_is_partly_used() -> None:
    node = NodeResources({"GPU": 2})
    first = node.allocate(units(GPU=0.6))
    second = node.allocate(units(GPU=0.6))
    assert first is not None and second is not None
    assert first.instance_ids() != second.instance_ids()  # 0.6 + 0.6 does not fit one device
    assert node.available["GPU"] == to_units(0.8)
    assert not node.fits(units(GPU=0.5))
    assert node.allocate(units(GPU=0.4)) is not None


def test_gpu_request_of_zero_needs_no_device() -> None:
    node = NodeResources({"GPU": 1, "CPU": 1})
    lease = node.allocate({"GPU": 0, "CPU": PRECISION})
    assert lease is not None
    assert lease.instances == {"GPU": []}


def test_lend_and_reclaim_cpu() -> None:
    node = NodeResources({"CPU": 1})
    blocked = node.allocate(units(CPU=1))
    assert blocked is not None
    assert not node.fits(units(CPU=1))
    node.lend_cpu(blocked)
    node.lend_cpu(blocked)  # lending twice lends once
    assert node.available["CPU"] == PRECISION
    other = node.allocate(units(CPU=1))
    assert other is not None
    node.reclaim_cpu(blocked)
    # Oversubscribed while both run, as in Ray; never reported as negative.
    assert node.available["CPU"] == -PRECISION
    assert node.available_amounts() == {"CPU": 0.0}
    node.release(other)
    node.release(blocked)
    assert node.available == node.total


def test_release_while_lent_restores_exactly() -> None:
    node = NodeResources({"CPU": 2})
    lease = node.allocate(units(CPU=1))
    assert lease is not None
    node.lend_cpu(lease)
    node.release(lease)
    assert node.available == node.total
    assert lease.lent_cpu == 0


def test_lending_without_cpu_is_a_no_op() -> None:
    node = NodeResources({"CPU": 1, "GPU": 1})
    lease = node.allocate(units(GPU=1))
    assert lease is not None
    node.lend_cpu(lease)
    assert lease.lent_cpu == 0
    assert node.available["CPU"] == PRECISION
    node.reclaim_cpu(lease)
    assert node.available["CPU"] == PRECISION


def test_feasibility_and_shortfall() -> None:
    node = NodeResources({"CPU": 2, "GPU": 1})
    assert node.is_feasible(units(CPU=2, GPU=1))
    assert not node.is_feasible(units(CPU=3))
    assert not node.is_feasible(units(TPU=1))
    assert node.shortfall(units(CPU=4, GPU=1, TPU=0.5)) == {"CPU": (4.0, 2.0), "TPU": (0.5, 0.0)}
    assert node.shortfall(units(CPU=1)) == {}
    busy = node.allocate(units(CPU=2))
    assert busy is not None
    # Feasibility ignores what is in use.
    assert node.is_feasible(units(CPU=2))
    assert not node.fits(units(CPU=2))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"": 1}, "resource names must be non-empty strings"),
        ({1: 1}, "resource names must be non-empty strings"),
        ({"CPU": "1"}, "the amount of 'CPU' must be a number, got '1'"),
        ({"CPU": True}, "the amount of 'CPU' must be a number, got True"),
        ({"CPU": None}, "the amount of 'CPU' must be a number"),
        ({"CPU": float("inf")}, "the amount of 'CPU' must be finite"),
        ({"CPU": -1}, "the amount of 'CPU' must be >= 0, got -1"),
        ({"GPU": 1.5}, "GPU amounts above 1 must be whole numbers, got 1.5"),
    ],
)
def test_validate_request_errors(request_: dict, message: str) -> None:
    with pytest.raises(ValueError, match=r"^what: ") as info:
        validate_request(request_, "what")
    assert message in str(info.value)


def test_validate_request_accepts_good_requests() -> None:
    validate_request({"CPU": 0, "GPU": 0.5, "custom": 3.25})
    validate_request({"GPU": 2.0})


def test_node_resources_validate_their_totals() -> None:
    with pytest.raises(ValueError, match="node resources: the amount of 'CPU' must be >= 0"):
        NodeResources({"CPU": -1})


_requests = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "CPU": st.integers(1, 40).map(lambda n: n / 10),
            "GPU": st.one_of(st.integers(1, 9).map(lambda n: n / 10), st.integers(1, 2)),
            "custom": st.sampled_from([0.25, 0.5, 1.0]),
        },
    ),
    max_size=25,
)


@given(_requests, st.randoms(use_true_random=False))
def test_allocate_release_round_trip_restores_availability(requests: list, rnd) -> None:
    node = NodeResources({"CPU": 4, "GPU": 3, "custom": 2})
    held: list[Allocation] = []
    for amounts in requests:
        allocation = node.allocate(to_unit_map(amounts))
        if allocation is not None:
            held.append(allocation)
        # Invariants while anything is held: nothing negative, devices match the pool.
        assert all(v >= 0 for v in node.available.values())
        assert all(0 <= free <= PRECISION for free in node.devices["GPU"])
        assert sum(node.devices["GPU"]) == node.available["GPU"]
    rnd.shuffle(held)
    for allocation in held:
        node.release(allocation)
    assert node.available == node.total
    assert node.devices["GPU"] == [PRECISION] * 3


def test_group_resource_names_come_apart_again() -> None:
    from manta._private.common.resources import group_resource, in_group, split_group_resource

    assert split_group_resource(group_resource("CPU", "ab12", 3)) == ("CPU", 3, "ab12")
    assert split_group_resource(group_resource("my_custom", "ab12")) == ("my_custom", None, "ab12")
    assert split_group_resource("CPU") is None
    assert in_group("GPU_group_0_ab12", "ab12") and not in_group("GPU_group_0_ab12", "cd34")


def test_a_request_inside_a_group_reads_under_its_own_names() -> None:
    from manta._private.common.resources import BUNDLE_MARKER, group_resource, outside_group

    inside = {
        group_resource("CPU", "ab12", 0): 1.0,
        group_resource("my_custom", "ab12", 0): 2.0,
        group_resource(BUNDLE_MARKER, "ab12", 0): 0.001,
    }
    assert outside_group(inside) == {"CPU": 1.0, "my_custom": 2.0}  # the bundle marker is dropped
    assert outside_group({group_resource("GPU", "ab12"): 1.0}) == {"GPU": 1.0}  # any bundle
    assert outside_group({"CPU": 2.0, "memory": 5.0}) == {"CPU": 2.0, "memory": 5.0}


def test_reported_amounts_are_finite_and_not_negative() -> None:
    from manta._private.common.resources import check_amounts

    check_amounts({"CPU": 1.5, "GPU": 0.5, "memory": 0}, "report")
    for bad in (
        {"CPU": -1.0},
        {"CPU": float("nan")},
        {"CPU": float("inf")},
        {"CPU": True},
        {"": 1.0},
        {1: 1.0},
        [1],
    ):
        with pytest.raises(ValueError):
            check_amounts(bad, "report")  # type: ignore[arg-type]
