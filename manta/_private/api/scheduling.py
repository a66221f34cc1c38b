"""Scheduling strategies (public as ``manta.util.scheduling_strategies``).

Each strategy turns into a small *wire form* (a string or a dict) that travels in lease
requests; the node daemon interprets it.
"""

from __future__ import annotations

from typing import Any

from manta._private.common.resources import BUNDLE_MARKER, BUNDLE_MARKER_REQUEST, group_resource


class NodeAffinitySchedulingStrategy:
    """Run on the node with ``node_id`` (hex). With ``soft=True`` fall back to any node
    when that one is dead or cannot fit the task; otherwise the task fails."""

    def __init__(
        self,
        node_id: str,
        soft: bool,
        _spill_on_unavailable: bool = False,
        _fail_on_unavailable: bool = False,
    ) -> None:
        if not isinstance(node_id, str):
            raise TypeError(f"node_id must be a hex string, got {type(node_id).__name__}")
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def wire(self) -> dict[str, Any]:
        return {"type": "node_affinity", "node_id": self.node_id, "soft": bool(self.soft)}

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Run inside a placement group's bundle (``-1``: any bundle)."""

    def __init__(
        self,
        placement_group: Any,
        placement_group_bundle_index: int = -1,
        placement_group_capture_child_tasks: bool | None = None,
    ) -> None:
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks

    def wire(self) -> dict[str, Any]:
        pg_id = getattr(self.placement_group, "id", None)
        return {
            "type": "placement_group",
            "placement_group_id": pg_id.hex() if pg_id is not None else None,
            "bundle_index": self.placement_group_bundle_index,
            "capture_child_tasks": bool(self.placement_group_capture_child_tasks),
        }


class In:
    """The label's value is one of ``values``."""

    def __init__(self, *values: str) -> None:
        self.values = list(_label_values(values))

    def wire(self) -> list[Any]:
        return ["in", self.values]


class NotIn:
    """The label is absent, or its value is none of ``values``."""

    def __init__(self, *values: str) -> None:
        self.values = list(_label_values(values))

    def wire(self) -> list[Any]:
        return ["not_in", self.values]


class Exists:
    """The node has the label, whatever its value."""

    def wire(self) -> list[Any]:
        return ["exists", []]


class DoesNotExist:
    """The node does not have the label."""

    def wire(self) -> list[Any]:
        return ["does_not_exist", []]


_OPERATORS = (In, NotIn, Exists, DoesNotExist)


class NodeLabelSchedulingStrategy:
    """Run on a node whose labels match ``hard`` (required) and preferably ``soft``:
    dicts of label name to ``In(...)``, ``NotIn(...)``, ``Exists()`` or ``DoesNotExist()``."""

    def __init__(self, hard: dict[str, Any], *, soft: dict[str, Any] | None = None) -> None:
        if not hard and not soft:
            raise ValueError("NodeLabelSchedulingStrategy needs a hard or a soft label selector")
        self.hard = _selector_wire(hard or {}, "hard")
        self.soft = _selector_wire(soft or {}, "soft")

    def wire(self) -> dict[str, Any]:
        return {"type": "node_label", "hard": self.hard, "soft": self.soft}


def _label_values(values: tuple[Any, ...]) -> tuple[str, ...]:
    if not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"label values must be one or more strings, got {values!r}")
    return values


def _selector_wire(selector: Any, which: str) -> dict[str, list[Any]]:
    if not isinstance(selector, dict):
        raise TypeError(f"the {which} label selector must be a dict, got {type(selector).__name__}")
    wire = {}
    for key, op in selector.items():
        if not isinstance(key, str) or not isinstance(op, _OPERATORS):
            raise ValueError(
                f"the {which} label selector maps label names to In(...), NotIn(...), Exists() or "
                f"DoesNotExist(); got {key!r}: {op!r}"
            )
        wire[key] = op.wire()
    return wire


def label_selector_wire(selector: dict[str, str]) -> dict[str, Any]:
    """The ``label_selector`` option (Ray 2.x syntax: ``"v"``, ``"!v"``, ``"in(a,b)"``,
    ``"!in(a,b)"``) as a node-label strategy."""
    hard: dict[str, list[Any]] = {}
    for key, text in selector.items():
        if not isinstance(key, str) or not isinstance(text, str) or not text.strip():
            raise ValueError(f"label_selector maps label names to value expressions, got {key!r}: {text!r}")
        text = text.strip()
        negate = text.startswith("!")
        body = text[1:].strip() if negate else text
        if body.startswith("in(") and body.endswith(")"):
            values = [v.strip() for v in body[3:-1].split(",") if v.strip()]
        else:
            values = [body]
        if not values:
            raise ValueError(f"label_selector {key!r}: {text!r} names no values")
        hard[key] = ["not_in" if negate else "in", values]
    return {"type": "node_label", "hard": hard, "soft": {}}


def in_placement_group(
    resources: dict[str, float],
    strategy: Any,
    what: str = "the task",
    placement: dict[str, float] | None = None,
) -> dict[str, float]:
    """A task's or actor's resources as its placement group bundle offers them (the group's
    own resource names, which exist only on the nodes holding its bundles), or unchanged
    when it is not placed in a group. ``what`` names the task or actor class in errors;
    ``placement`` is what an actor needs to be created, when that is more than it holds."""
    if not isinstance(strategy, PlacementGroupSchedulingStrategy):
        return resources
    pg = strategy.placement_group
    pg_id = getattr(pg, "id", None)
    if pg_id is None:
        raise ValueError(f"placement_group must be a PlacementGroup, got {pg!r}")
    if getattr(pg, "_removed", False):
        raise ValueError(
            f"placement group {pg_id.hex()} was removed; tasks and actors cannot use it any more"
        )
    index = strategy.placement_group_bundle_index
    bundles = pg.bundle_specs
    count = len(bundles)
    if not isinstance(index, int) or isinstance(index, bool) or not -1 <= index < count:
        raise ValueError(
            f"placement_group_bundle_index must be -1 (any bundle) or in [0, {count}) for this "
            f"group of {count} bundles, got {index!r}"
        )
    candidates = bundles if index == -1 else [bundles[index]]
    # Ray's wording, which its users match on; unlike Ray, a request for one bundle must fit
    # that bundle (Ray would leave it pending for ever).
    chosen = "" if index == -1 else f" (it asks for bundle {index}: {bundles[index]})"
    if not _fits_one(resources, candidates):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the resource request "
            f"{resources} cannot fit into any bundles for the placement group, {bundles}.{chosen}"
        )
    if placement is not None and not _fits_one(placement, candidates):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the actor requires "
            f"{placement.get('CPU', 0)} CPU for creation, but it cannot fit into any bundles for "
            f"the placement group, {bundles}.{chosen} Give the bundles CPUs, or create the actor "
            "with num_cpus=0."
        )
    return group_request(resources, pg_id.hex(), index)


def _fits_one(resources: dict[str, float], bundles: list[dict[str, float]]) -> bool:
    return any(all(b.get(k, 0.0) >= v for k, v in resources.items() if v > 0) for b in bundles)


def group_request(resources: dict[str, float], pg_hex: str, index: int) -> dict[str, float]:
    inside = {group_resource(name, pg_hex, index): v for name, v in resources.items() if v > 0}
    inside[group_resource(BUNDLE_MARKER, pg_hex, index)] = BUNDLE_MARKER_REQUEST
    return inside


def group_context(strategy: Any) -> list[Any] | None:
    """What a task records of the placement group it is placed in: [id, index, capture]."""
    if not isinstance(strategy, PlacementGroupSchedulingStrategy):
        return None
    return [
        strategy.placement_group.id,
        strategy.placement_group_bundle_index,
        bool(strategy.placement_group_capture_child_tasks),
    ]


STRATEGY_TYPES = (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
    NodeLabelSchedulingStrategy,
)


def strategy_wire(strategy: Any, label_selector: dict[str, str] | None = None) -> Any:
    """Validate a scheduling_strategy option and return its wire form."""
    if label_selector:
        if strategy not in (None, "DEFAULT"):
            raise ValueError(
                "label_selector cannot be combined with a scheduling_strategy other than DEFAULT"
            )
        return label_selector_wire(label_selector)
    if strategy is None:
        return "DEFAULT"
    if strategy in ("DEFAULT", "SPREAD"):
        return strategy
    if isinstance(strategy, STRATEGY_TYPES):
        return strategy.wire()
    raise ValueError(
        f"Invalid scheduling_strategy value {strategy}. Valid values are "
        '["DEFAULT" | "SPREAD" | PlacementGroupSchedulingStrategy | '
        "NodeAffinitySchedulingStrategy | NodeLabelSchedulingStrategy]"
    )
