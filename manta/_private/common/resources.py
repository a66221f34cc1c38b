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
# Every committed bundle also offers this much of a marker resource, so that work with no
# resources of its own can still be steered into the bundle (Ray's names and amount).
BUNDLE_MARKER = "bundle"
BUNDLE_MARKER_AMOUNT = 1000.0
# What a task in a group asks of the marker.
BUNDLE_MARKER_REQUEST = 0.001


def group_resource(name: str, pg_hex: str, index: int | None = None) -> str:
    """The name a resource takes inside a placement group (``index`` None: any bundle)."""
    return f"{name}_group_{pg_hex}" if index is None or index < 0 else f"{name}_group_{index}_{pg_hex}"


def split_group_resource(name: str) -> tuple[str, int | None, str] | None:
    """(resource, bundle index or None for any bundle, group id hex) of a name made by
    ``group_resource``; None for an ordinary resource."""
    base, sep, rest = name.rpartition("_group_")
    if not sep:
        return None
    index, _, pg_hex = rest.partition("_")  # group ids are hex: no "_" in them
    if pg_hex and index.isdigit():
        return base, int(index), pg_hex
    return base, None, rest


def outside_group(amounts: Mapping[str, float]) -> dict[str, float]:
    """What a request made inside a placement group asks for under the resources' own names
    (``CPU_group_0_<id>`` -> ``CPU``), without the bundle marker: what users asked for."""
    result: dict[str, float] = {}
    for name, amount in amounts.items():
        parts = split_group_resource(name)
        base = name if parts is None else parts[0]
        if base != BUNDLE_MARKER or parts is None:
            result[base] = amount
    return result


def in_group(name: str, pg_hex: str) -> bool:
    """Whether resource ``name`` is one of the group's (any bundle's, or one bundle's)."""
    parts = split_group_resource(name)
    return parts is not None and parts[2] == pg_hex


def bundle_capacity(pg_hex: str, index: int, bundle: Mapping[str, float]) -> dict[str, float]:
    """What a committed bundle adds to its node: each resource under the group's names
    (for this bundle, and for any bundle), and the bundle markers."""
    added: dict[str, float] = {}
    for name, amount in {**bundle, BUNDLE_MARKER: BUNDLE_MARKER_AMOUNT}.items():
        for target in (group_resource(name, pg_hex), group_resource(name, pg_hex, index)):
            added[target] = added.get(target, 0.0) + amount
    return added


def to_units(amount: float) -> int:
    return round(amount * PRECISION)


def from_units(units: int) -> float:
    return units / PRECISION


def to_unit_map(amounts: Mapping[str, float]) -> dict[str, int]:
    return {name: to_units(v) for name, v in amounts.items() if to_units(v) != 0}


def from_unit_map(units: Mapping[str, int]) -> dict[str, float]:
    return {name: from_units(v) for name, v in units.items()}


def check_amounts(amounts: Mapping[str, float], what: str) -> None:
    """Raise ValueError unless ``amounts`` maps resource names to finite amounts >= 0 (what
    a node reports it has: any such amount, unlike a request)."""
    if not isinstance(amounts, Mapping):
        raise ValueError(f"{what}: expected a map of resource amounts, got {type(amounts).__name__}")
    for name, value in amounts.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: resource names must be non-empty strings, got {name!r}")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{what}: the amount of {name!r} must be a finite number >= 0, got {value!r}")


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

    def add_capacity(self, amounts: Mapping[str, float]) -> None:
        """New resources on the node (a committed bundle's)."""
        for name, units in to_unit_map(amounts).items():
            self.total[name] = self.total.get(name, 0) + units
            self.available[name] = self.available.get(name, 0) + units

    def remove_capacity(self, amounts: Mapping[str, float]) -> None:
        """Resources the node no longer offers (a released bundle's); their holders must
        have been stopped first."""
        for name, units in to_unit_map(amounts).items():
            for table in (self.total, self.available):
                left = table.get(name, 0) - units
                if left > 0:
                    table[name] = left
                else:
                    table.pop(name, None)

    def available_amounts(self) -> dict[str, float]:
        return {name: from_units(max(v, 0)) for name, v in self.available.items()}

    def total_amounts(self) -> dict[str, float]:
        return from_unit_map(self.total)
