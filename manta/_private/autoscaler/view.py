"""The cluster as the autoscaler's policy sees it (pure): built from what the gcs says of
its nodes, actors and placement groups, the standing resource request, and what the
provider has launched; and how long each node has been idle."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from manta._private.autoscaler.config import AutoscalingConfig
from manta._private.autoscaler.policy import EPSILON, ClusterView, GroupDemand, Launching, Node, Shape
from manta._private.autoscaler.provider import LAUNCH_LABEL, Launched
from manta._private.common.resources import split_group_resource

# Resources a node always has free (its own address): they say nothing of use.
_ADDRESS_PREFIX = "node:"


class IdleTimes:
    """Since when each node has been idle; a node seen busy starts again from zero."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def update(self, node_id: str, busy: bool, now: float) -> float | None:
        if busy:
            self._since.pop(node_id, None)
            return None
        return self._since.setdefault(node_id, now)

    def keep_only(self, node_ids: Iterable[str]) -> None:
        alive = set(node_ids)
        for gone in set(self._since) - alive:
            del self._since[gone]


def in_use(total: dict[str, float], available: dict[str, float]) -> bool:
    """Whether anything on the node holds resources: a task, an actor, a placement group's
    bundle, or objects in its store (the store's free bytes are reported as available
    object_store_memory, and unreferenced objects are freed)."""
    return any(
        amount - available.get(name, 0.0) > EPSILON
        for name, amount in total.items()
        if not name.startswith(_ADDRESS_PREFIX)
    )


def cluster_view(
    config: AutoscalingConfig,
    nodes: Sequence[Any],  # NodeState
    actor_nodes: set[str],  # hex ids of the nodes where a live actor is
    waiting_actors: Sequence[Any],  # [resources, label selector] of actors no node holds yet
    groups: Sequence[Any],  # PlacementGroupInfo
    requested: tuple[dict[str, float], ...],
    launched: Sequence[Launched],
    idle: IdleTimes,
    now: float,
) -> ClusterView:
    types = config.worker_types()
    ours = {x.launch_id: x for x in launched}
    view_nodes, demand, joined = [], [], set()
    view_id: dict[str, str] = {}  # a node's hex id -> its id in the view
    for state in nodes:
        if not state.alive:
            continue
        total = state.total or state.info.resources
        node_hex = state.info.node_id.hex()
        launch_id = state.info.labels.get(LAUNCH_LABEL, "")
        mine = ours.get(launch_id)
        if mine is not None:
            joined.add(launch_id)
        busy = node_hex in actor_nodes or in_use(total, state.available)
        view_id[node_hex] = launch_id if mine is not None else node_hex
        view_nodes.append(
            Node(
                view_id[node_hex],
                mine.node_type if mine is not None and mine.node_type in types else "",
                dict(total),
                dict(state.available),
                dict(state.info.labels),
                idle.update(node_hex, busy, now),
            )
        )
        # Tasks waiting for a placement group's bundle wait for the group, whose own
        # demand (its unplaced bundles) is counted below.
        demand += [
            Shape(dict(shape), dict(selector))
            for shape, selector in (
                *_with_labels(state.pending, state.pending_labels),
                *_with_labels(state.infeasible, state.infeasible_labels),
            )
            if not any(split_group_resource(name) for name in shape)
        ]
    demand += [Shape(dict(need), dict(selector)) for need, selector in waiting_actors]
    idle.keep_only(s.info.node_id.hex() for s in nodes if s.alive)
    launching = tuple(
        Launching(x.launch_id, x.node_type, x.launched_at) for x in launched if x.launch_id not in joined
    )
    return ClusterView(
        nodes=tuple(view_nodes),
        launching=launching,
        demand=tuple(demand),
        groups=tuple(_waiting(g, view_id) for g in groups if g.state in ("PENDING", "RESCHEDULING")),
        requested=requested,
    )


def _with_labels(
    shapes: list[dict[str, float]], labels: list[dict[str, Any]] | None
) -> list[tuple[Any, Any]]:
    """Each shape with its label selector (none from a node that did not say)."""
    if labels is None or len(labels) != len(shapes):
        return [(shape, {}) for shape in shapes]
    return list(zip(shapes, labels, strict=True))


def _waiting(group: Any, view_id: dict[str, str]) -> GroupDemand:
    placed = list(zip(group.bundles, group.nodes, strict=False))
    unplaced = tuple(dict(b) for b, node in placed if not node)
    avoid = tuple(view_id.get(node, node) for _, node in placed if node)
    return GroupDemand(
        group.pg_id.hex(), unplaced or tuple(dict(b) for b in group.bundles), group.strategy, avoid
    )
