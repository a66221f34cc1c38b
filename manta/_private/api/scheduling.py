"""Scheduling strategies (public as ``manta.util.scheduling_strategies``).

Each strategy turns into a small *wire form* (a string or a dict) that travels in lease
requests; the node daemon interprets it.
"""

from __future__ import annotations

from typing import Any


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


class NodeLabelSchedulingStrategy:
    """Run on a node whose labels match ``hard`` (required) and preferably ``soft``."""

    def __init__(self, hard: dict[str, Any], *, soft: dict[str, Any] | None = None) -> None:
        self.hard = hard
        self.soft = soft or {}

    def wire(self) -> dict[str, Any]:
        return {"type": "node_label", "hard": _labels_wire(self.hard), "soft": _labels_wire(self.soft)}


def _labels_wire(selector: dict[str, Any]) -> dict[str, Any]:
    return {
        k: repr(v) if not isinstance(v, (str, int, float, bool, list)) else v for k, v in selector.items()
    }


STRATEGY_TYPES = (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
    NodeLabelSchedulingStrategy,
)


def strategy_wire(strategy: Any) -> Any:
    """Validate a scheduling_strategy option and return its wire form."""
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
