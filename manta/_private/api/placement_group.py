"""Placement groups (public as ``manta.util.placement_group``): reserve bundles of
resources across nodes as one unit, then run tasks and actors inside them.

    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    manta.get(pg.ready())
    f.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    remove_placement_group(pg)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from manta._private.api.context import current_worker, ensure_initialized, require_initialized
from manta._private.api.remote_function import RemoteFunction
from manta._private.api.scheduling import PlacementGroupSchedulingStrategy, label_selector_wire
from manta._private.common.ids import PlacementGroupID
from manta._private.common.placement import PG_STRATEGIES
from manta._private.rpc import messages as m


class PlacementGroup:
    """A handle to a placement group: its id and its bundles."""

    def __init__(self, id: PlacementGroupID, bundle_specs: list[dict[str, float]] | None = None) -> None:
        self.id = id
        self._bundles = bundle_specs
        self._removed = False

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        if self._bundles is None:
            info = _info(self.id)
            self._bundles = [] if info is None else [dict(b) for b in info.bundles]
        return self._bundles

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    @property
    def is_empty(self) -> bool:
        return self.id.is_nil()

    def ready(self) -> Any:
        """An ObjectRef that resolves (to this group) once every bundle is reserved."""
        strategy = PlacementGroupSchedulingStrategy(self, -1)
        return _ready.options(scheduling_strategy=strategy, num_cpus=0).remote(self)

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Whether the group is created within ``timeout_seconds``."""
        worker = require_initialized("waiting for a placement group")
        if (
            not isinstance(timeout_seconds, (int, float))
            or timeout_seconds < 0
            or math.isnan(timeout_seconds)
        ):
            raise ValueError(f"timeout_seconds must be a number >= 0, got {timeout_seconds!r}")
        return bool(
            worker.call_gcs(m.WaitPlacementGroup(self.id, float(timeout_seconds)), timeout_seconds + 30)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PlacementGroup, (self.id, self._bundles))

    def __repr__(self) -> str:
        return f"PlacementGroup(id={self.id.hex()}, bundles={self._bundles})"


def _ready_check(pg: PlacementGroup) -> PlacementGroup:
    return pg


_ready = RemoteFunction(_ready_check, {"max_retries": -1})


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    bundle_label_selector: list[dict[str, str]] | None = None,
    _max_cpu_fraction_per_node: float | None = None,
    _soft_target_node_id: str | None = None,
) -> PlacementGroup:
    """Reserve ``bundles`` (a list of resource dicts) as one group; returns at once, the
    group is created in the background (``ready()``, ``wait()``)."""
    _check_bundles(bundles)
    if strategy not in PG_STRATEGIES:
        raise ValueError(
            f"Invalid placement group strategy {strategy!r}. Supported strategies are: {list(PG_STRATEGIES)}."
        )
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"Placement group `lifetime` argument must be either `None` or 'detached'. Got {lifetime!r}."
        )
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    selectors = _selectors(bundle_label_selector, len(bundles))
    worker = ensure_initialized()
    pg_id = PlacementGroupID.from_random()
    spec = m.PlacementGroupSpec(
        pg_id,
        name,
        worker.namespace,
        worker.job_id,
        [{k: float(v) for k, v in b.items()} for b in bundles],
        strategy,
        lifetime == "detached",
        selectors,
    )
    info: m.PlacementGroupInfo = worker.call_gcs(m.CreatePlacementGroup(spec))
    if info.infeasible:
        warnings.warn(
            f"The placement group {name or pg_id.hex()} cannot be placed on this cluster: {info.message}. "
            "It stays pending until nodes that fit it join.",
            stacklevel=2,
        )
    return PlacementGroup(pg_id, spec.bundles)


def _check_bundles(bundles: Any) -> None:
    if not isinstance(bundles, list) or not bundles:
        raise ValueError("The placement group `bundles` argument must be a non-empty list of resource dicts.")
    for bundle in bundles:
        if not isinstance(bundle, dict):
            raise ValueError(f"Each bundle must be a dict of resource name to amount, got {bundle!r}.")
        for key, value in bundle.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"Bundle {bundle} maps resource names to numbers; {key!r}: {value!r} is not."
                )
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Bundle {bundle} has a negative or non-finite amount of {key!r}: {value}.")
        if not any(v > 0 for v in bundle.values()):
            raise ValueError(
                f"Bundles cannot be an empty dictionary or resources with only 0 values. Bundles: {bundles}"
            )


def _selectors(selectors: Any, count: int) -> list[dict[str, Any]] | None:
    if selectors is None:
        return None
    if not isinstance(selectors, list) or len(selectors) != count:
        raise ValueError(
            f"bundle_label_selector must be a list with one dict per bundle ({count}), got {selectors!r}"
        )
    wire = []
    for selector in selectors:
        if not isinstance(selector, dict):
            raise ValueError(f"each bundle label selector must be a dict, got {selector!r}")
        wire.append(label_selector_wire(selector)["hard"] if selector else {})  # Ray's "!v", "in(a,b)"
    return wire


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's bundles; tasks using it are stopped and its actors killed."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"expected a PlacementGroup, got {type(placement_group).__name__}")
    worker = require_initialized("removing a placement group")
    worker.call_gcs(m.RemovePlacementGroup(placement_group.id))
    placement_group._removed = True


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    worker = require_initialized("looking up a placement group")
    info = worker.call_gcs(m.GetPlacementGroup(None, placement_group_name, worker.namespace))
    if info is None:
        raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")
    return PlacementGroup(info.pg_id, [dict(b) for b in info.bundles])


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """Every group (or one), in Ray's format: id, name, bundles, their nodes, strategy, state."""
    worker = require_initialized("listing placement groups")
    if placement_group is not None:
        info = _info(placement_group.id)
        return {} if info is None else _row(info)
    return {info.pg_id.hex(): _row(info) for info in worker.call_gcs(m.ListPlacementGroups())}


def get_current_placement_group() -> PlacementGroup | None:
    """The group the current task or actor runs in; None in a driver or outside groups."""
    worker = current_worker()
    if worker is None or worker.is_driver:
        return None
    group = worker.context.placement_group
    return None if group is None else PlacementGroup(PlacementGroupID(group[0]))


def _info(pg_id: PlacementGroupID) -> m.PlacementGroupInfo | None:
    worker = require_initialized("using a placement group")
    return worker.call_gcs(m.GetPlacementGroup(pg_id, "", ""))  # type: ignore[no-any-return]


def _row(info: m.PlacementGroupInfo) -> dict[str, Any]:
    return {
        "placement_group_id": info.pg_id.hex(),
        "name": info.name,
        "bundles": {i: dict(b) for i, b in enumerate(info.bundles)},
        "bundles_to_node_id": {i: node for i, node in enumerate(info.nodes) if node},
        "strategy": info.strategy,
        "state": info.state,
        "is_detached": info.detached,
        "stats": {"scheduling_state": info.message or info.state},
    }
