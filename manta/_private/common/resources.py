"""Resource arithmetic: requests, a node's totals and availability, and GPU instances.

Amounts are kept as integers in units of 1/10,000 so that fractional requests add and
subtract exactly (ten tasks of 0.1 CPU free exactly one CPU). GPUs are also tracked per
device: a fractional request is served by one device, a whole request by whole devices,
and the device indices become the worker's ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

PRECISION = 10_000
# Resources handed out per device index rather than as one pool.
INSTANCE_RESOURCES = ("GPU",)


def to_units(amount: float) -> int:
    return round(amount * PRECISION)


def from_units(units: int) -> float:
    return units / PRECISION


def to_unit_map(amounts: Mapping[str, float]) -> dict[str, int]:
    return {name: to_units(v) for name, v in amounts.items() if to_units(v) != 0}


def from_unit_map(units: Mapping[str, int]) -> dict[str, float]:
    return {name: from_units(v) for name, v in units.items()}


def validate_request(amounts: Mapping[str, float], what: str = "resources") -> None:
    """Raise ValueError for a request no scheduler could ever interpret."""
    for name, value in amounts.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: resource names must be non-empty strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{what}: the amount of {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{what}: the amount of {name!r} must be finite, got {value}")
        if value < 0:
            raise ValueError(f"{what}: the amount of {name!r} must be >= 0, got {value}")
        if value > 1 and name in INSTANCE_RESOURCES and value != int(value):
            raise ValueError(f"{what}: {name} amounts above 1 must be whole numbers, got {value}")


@dataclass(slots=True)
class Allocation:
    """What one lease holds: units per resource, and device indices for GPU-like ones."""

    units: dict[str, int]
    instances: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # CPU units given back while the holder is blocked in get/wait.
    lent_cpu: int = 0

    def instance_ids(self) -> dict[str, list[str]]:
        return {name: [str(i) for i, _ in parts] for name, parts in self.instances.items()}

    def amounts(self) -> dict[str, float]:
        return from_unit_map(self.units)


class NodeResources:
    """Totals and availability of one node. Pure bookkeeping: no I/O, no clock."""

    def __init__(self, total: Mapping[str, float]) -> None:
        validate_request(total, "node resources")
        self.total: dict[str, int] = to_unit_map(total)
        self.available: dict[str, int] = dict(self.total)
        self.devices: dict[str, list[int]] = {}
        for name in INSTANCE_RESOURCES:
            count = self.total.get(name, 0) // PRECISION
            if count:
                self.devices[name] = [PRECISION] * count

    def is_feasible(self, request: Mapping[str, int]) -> bool:
        """Could this request ever run here, with nothing else running?"""
        return all(self.total.get(name, 0) >= units for name, units in request.items())

    def shortfall(self, request: Mapping[str, int]) -> dict[str, tuple[float, float]]:
        """Resources the node can never provide: name -> (requested, total)."""
        return {
            name: (from_units(units), from_units(self.total.get(name, 0)))
            for name, units in request.items()
            if self.total.get(name, 0) < units
        }

    def fits(self, request: Mapping[str, int]) -> bool:
        if not all(self.available.get(name, 0) >= units for name, units in request.items()):
            return False
        return all(
            self._pick_devices(name, units) is not None
            for name, units in request.items()
            if name in self.devices
        )

    def allocate(self, request: Mapping[str, int]) -> Allocation | None:
        if not self.fits(request):
            return None
        allocation = Allocation(units=dict(request))
        for name, units in request.items():
            self.available[name] = self.available.get(name, 0) - units
            if name in self.devices:
                picked = self._pick_devices(name, units)
                assert picked is not None  # fits() checked it
                for index, part in picked:
                    self.devices[name][index] -= part
                allocation.instances[name] = picked
        return allocation

    def release(self, allocation: Allocation) -> None:
        for name, units in allocation.units.items():
            self.available[name] = self.available.get(name, 0) + units
        for name, parts in allocation.instances.items():
            for index, part in parts:
                self.devices[name][index] += part
        if allocation.lent_cpu:
            # The lent CPU was already returned to the pool when it was lent.
            self.available["CPU"] = self.available.get("CPU", 0) - allocation.lent_cpu
            allocation.lent_cpu = 0

    def lend_cpu(self, allocation: Allocation) -> None:
        """The holder blocked in get/wait: its CPU may run other work meanwhile."""
        cpu = allocation.units.get("CPU", 0)
        if cpu and not allocation.lent_cpu:
            allocation.lent_cpu = cpu
            self.available["CPU"] = self.available.get("CPU", 0) + cpu

    def reclaim_cpu(self, allocation: Allocation) -> None:
        """The holder resumed; this may oversubscribe the CPU briefly, as in Ray."""
        if allocation.lent_cpu:
            self.available["CPU"] = self.available.get("CPU", 0) - allocation.lent_cpu
            allocation.lent_cpu = 0

    def _pick_devices(self, name: str, units: int) -> list[tuple[int, int]] | None:
        free = self.devices[name]
        if units == 0:
            return []
        if units < PRECISION:
            # A fraction shares one device: pick the fullest one that still fits it.
            candidates = [i for i, left in enumerate(free) if left >= units]
            if not candidates:
                return None
            best = min(candidates, key=lambda i: (free[i], i))
            return [(best, units)]
        whole = [i for i, left in enumerate(free) if left == PRECISION]
        need = units // PRECISION
        if len(whole) < need:
            return None
        return [(i, PRECISION) for i in whole[:need]]

    def available_amounts(self) -> dict[str, float]:
        return {name: from_units(max(v, 0)) for name, v in self.available.items()}

    def total_amounts(self) -> dict[str, float]:
        return from_unit_map(self.total)
