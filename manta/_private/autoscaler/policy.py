"""What the autoscaler does next, as a pure function: from the cluster's demand, its nodes,
what is launching and how long each node has been idle, the nodes to launch and to
terminate, and why (what ``manta status`` shows).

The rules, as Ray documents its autoscaler's:
- Demand is resource shapes (tasks and actors waiting for room), placement groups'
  unplaced bundles, and ``request_resources`` bundles. Requested bundles are a floor on
  the cluster's size: they are packed onto the nodes' totals, not onto what is free.
- Demand is packed first onto what is free on the nodes and on nodes already launching;
  what is left goes onto new nodes, each time of the type that takes most of it (ties: the
  smaller node, then the name); a GPU type only for demand that needs GPUs, unless no
  other type can take it. Label selectors are obeyed.
- A placement group is launched for all or nothing: STRICT_PACK needs one node for all its
  bundles, STRICT_SPREAD one node per bundle; when its nodes cannot all be had, none is
  launched for it.
- Each node type keeps ``min_workers`` nodes; none goes past its ``max_workers``, and the
  cluster not past ``max_workers`` (the head not counted).
- ``upscaling_speed``: at most max(5, speed x joined nodes) launches pending at once;
  nodes for requested resources are launched at once, whatever it says.
- A worker idle for ``idle_timeout_minutes`` is terminated, unless that takes its type below
  ``min_workers`` or demand was just packed onto it. Whether a node is idle (nothing in use,
  no object still referenced, no detached actor) is the caller's to say.
- A launched node that has not joined within ``join_timeout_s`` is terminated, and said.
- Demand no node type could ever hold is reported, never launched for.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from manta._private.autoscaler.config import AutoscalingConfig, NodeType
from manta._private.common.placement import labels_match

Resources = dict[str, float]

# Launches allowed pending at once, whatever upscaling_speed says (Ray's floor).
MIN_PENDING_LAUNCHES = 5
# Amounts closer than this are equal (resources are floats on the wire).
EPSILON = 1e-6
_REQUESTED = "requested resources"


@dataclass(frozen=True, slots=True)
class Shape:
    """One task's or actor's need, with the labels its node must have."""

    resources: Resources
    selector: dict[str, Any] = field(default_factory=dict)  # placement's [operator, values] form


@dataclass(frozen=True, slots=True)
class GroupDemand:
    """A placement group waiting for its bundles to fit."""

    group_id: str
    bundles: tuple[Resources, ...]
    strategy: str
    avoid: tuple[str, ...] = ()  # nodes holding its placed bundles (STRICT_SPREAD: not again)


@dataclass(frozen=True, slots=True)
class Node:
    """A node in the cluster. ``node_type`` is "" for one the autoscaler did not launch (the
    head, a node started by hand): never terminated. ``idle_since`` is None while busy."""

    node_id: str
    node_type: str
    total: Resources
    available: Resources
    labels: dict[str, str] = field(default_factory=dict)
    idle_since: float | None = None


@dataclass(frozen=True, slots=True)
class Launching:
    """A node launched that has not joined yet."""

    node_id: str
    node_type: str
    launched_at: float


@dataclass(frozen=True, slots=True)
class ClusterView:
    nodes: tuple[Node, ...] = ()
    launching: tuple[Launching, ...] = ()
    demand: tuple[Shape, ...] = ()
    groups: tuple[GroupDemand, ...] = ()
    requested: tuple[Resources, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    launch: dict[str, int]  # node type -> how many
    terminate: dict[str, str]  # node id -> why
    reasons: list[str]  # why each launch, and what waits
    unplaceable: list[str]  # demand no node type can hold


@dataclass(slots=True)
class _Bin:
    """Room on a node (or one to launch) while demand is packed."""

    free: Resources
    labels: dict[str, str]
    node_id: str | None = None  # None: a node this plan launches
    node_type: str = ""
    purpose: str = ""  # what a new node is launched for
    demand: Resources = field(default_factory=dict)  # the demand packed onto it
    packed: bool = False

    def fits(self, shape: Shape) -> bool:
        return all(self.free.get(k, 0.0) + EPSILON >= v for k, v in shape.resources.items() if v > 0) and (
            not shape.selector or labels_match(self.labels, shape.selector)
        )

    def take(self, shape: Shape) -> None:
        for k, v in shape.resources.items():
            self.free[k] = self.free.get(k, 0.0) - v
            self.demand[k] = self.demand.get(k, 0.0) + v
        self.packed = True

    def fill(self, shapes: list[Shape]) -> list[Shape]:
        """Take each of ``shapes`` that fits, in order; those that did not."""
        left = []
        for shape in shapes:
            if self.fits(shape):
                self.take(shape)
            else:
                left.append(shape)
        return left

    def copy(self) -> _Bin:
        return _Bin(
            dict(self.free),
            self.labels,
            self.node_id,
            self.node_type,
            self.purpose,
            dict(self.demand),
            self.packed,
        )


class _Planner:
    def __init__(
        self, config: AutoscalingConfig, view: ClusterView, now: float, join_timeout_s: float
    ) -> None:
        self.config = config
        self.types = config.worker_types()
        self.terminate: dict[str, str] = {}
        self.waiting: list[str] = []
        self.unplaceable: list[str] = []
        launching = []
        for launch in view.launching:
            if now - launch.launched_at > join_timeout_s:
                self.terminate[launch.node_id] = (
                    f"launched as {launch.node_type} {now - launch.launched_at:.0f} s ago and never joined "
                    f"(join timeout {join_timeout_s:g} s)"
                )
            else:
                launching.append(launch)
        self.pending = len(launching)
        self.joined = len(view.nodes)  # what upscaling_speed multiplies
        # Nodes of each type there are or will be (joined and launching).
        self.counts: Counter[str] = Counter(n.node_type for n in view.nodes if n.node_type in self.types)
        self.counts.update(launch.node_type for launch in launching if launch.node_type in self.types)
        coming = [
            self._empty(self.types[x.node_type], x.node_id) for x in launching if x.node_type in self.types
        ]
        # Room to pack demand onto (what is free), and to pack requests onto (the totals).
        self.bins = [_Bin(dict(n.available), n.labels, n.node_id, n.node_type) for n in view.nodes] + coming
        self.totals = [_Bin(dict(n.total), n.labels, n.node_id, n.node_type) for n in view.nodes]
        self.totals += [b.copy() for b in coming]

    @staticmethod
    def _empty(node_type: NodeType, node_id: str | None = None, purpose: str = "") -> _Bin:
        return _Bin(dict(node_type.resources), node_type.labels, node_id, node_type.name, purpose)

    # -- launching ---------------------------------------------------------------------------------
    def room(self, node_type: NodeType, counts: Counter[str]) -> bool:
        return (
            counts[node_type.name] < node_type.max_workers and sum(counts.values()) < self.config.max_workers
        )

    def new_node(self, node_type: NodeType, purpose: str, bins: list[_Bin], counts: Counter[str]) -> _Bin:
        counts[node_type.name] += 1
        new = self._empty(node_type, purpose=purpose)
        bins.append(new)
        return new

    def min_workers(self) -> None:
        for node_type in self.types.values():
            while self.counts[node_type.name] < node_type.min_workers and self.room(node_type, self.counts):
                new = self.new_node(
                    node_type, f"min_workers is {node_type.min_workers}", self.bins, self.counts
                )
                self.totals.append(new.copy())

    def requested(self, bundles: tuple[Resources, ...]) -> None:
        """Requested bundles against the nodes' totals; new nodes for what does not fit."""
        left = _pack([Shape(b) for b in bundles], self.totals)
        before = len(self.totals)
        self._launch_for(left, _REQUESTED, self.totals, self.counts)
        for new in self.totals[before:]:  # all their room is free for the demand packed next
            fresh = self._empty(self.types[new.node_type], purpose=_REQUESTED)
            fresh.demand = dict(new.demand)
            self.bins.append(fresh)

    def group(self, group: GroupDemand) -> None:
        """All of a group's nodes, or none."""
        bins = [b.copy() for b in self.bins]
        counts = Counter(self.counts)
        purpose = f"placement group {group.group_id}"
        shapes = [Shape(b) for b in group.bundles]
        if group.strategy == "STRICT_PACK":
            combined: Resources = {}
            for bundle in group.bundles:
                for k, v in bundle.items():
                    combined[k] = combined.get(k, 0.0) + v
            left = self._launch_for(_pack([Shape(combined)], bins), purpose, bins, counts)
        elif group.strategy == "STRICT_SPREAD":
            left = self._spread(shapes, bins, counts, purpose, group.avoid)
        else:  # PACK and SPREAD are best-effort: as separate shapes
            left = self._launch_for(_pack(shapes, bins), purpose, bins, counts)
        if left:
            self.waiting.append(f"{purpose} waits: {self._why_not(left[0], counts)}")
            return
        self.bins, self.counts = bins, counts

    def _spread(
        self,
        shapes: list[Shape],
        bins: list[_Bin],
        counts: Counter[str],
        purpose: str,
        avoid: tuple[str, ...],
    ) -> list[Shape]:
        used = {i for i, b in enumerate(bins) if b.node_id in avoid}
        left = []
        for shape in _largest_first(shapes):
            spot = next((i for i, b in enumerate(bins) if i not in used and b.fits(shape)), None)
            if spot is None:
                node_type = self._best_type([shape], counts)
                if node_type is None:
                    left.append(shape)
                    continue
                self.new_node(node_type, purpose, bins, counts)
                spot = len(bins) - 1
            bins[spot].take(shape)
            used.add(spot)
        return left

    def demand(self, shapes: tuple[Shape, ...]) -> None:
        left = self._launch_for(_pack(list(shapes), self.bins), "pending demand", self.bins, self.counts)
        for shape in left:
            reason = self._why_not(shape, self.counts)
            if reason.startswith("no node type"):
                self.unplaceable.append(f"cannot place {_show(shape)}: {reason}")
            else:
                self.waiting.append(f"{_show(shape)} waits: {reason}")

    def _launch_for(
        self, shapes: list[Shape], purpose: str, bins: list[_Bin], counts: Counter[str]
    ) -> list[Shape]:
        """New nodes for ``shapes``, each of the type that takes most of them; what is left."""
        left = _largest_first(shapes)
        while left:
            node_type = self._best_type(left, counts)
            if node_type is None:
                break
            left = self.new_node(node_type, purpose, bins, counts).fill(left)
        return left

    def _best_type(self, shapes: list[Shape], counts: Counter[str]) -> NodeType | None:
        """The type that takes most of ``shapes``; a GPU type only for demand that needs
        GPUs (or when nothing else fits it), and of equal ones the smaller."""
        best, best_key = None, None
        for node_type in sorted(self.types.values(), key=lambda t: t.name):
            if not self.room(node_type, counts):
                continue
            trial, taken = self._empty(node_type), []
            for shape in shapes:
                if trial.fits(shape):
                    trial.take(shape)
                    taken.append(shape)
            if not taken:
                continue
            wastes_gpus = bool(node_type.resources.get("GPU")) and not any(
                s.resources.get("GPU") for s in taken
            )
            size = (node_type.resources.get("GPU", 0.0), node_type.resources.get("CPU", 0.0))
            key = (not wastes_gpus, len(taken), -size[0], -size[1])
            if best_key is None or key > best_key:
                best, best_key = node_type, key
        return best

    def _why_not(self, shape: Shape, counts: Counter[str]) -> str:
        able = [t for t in self.types.values() if self._empty(t).fits(shape)]
        if not able:
            return "no node type has it"
        full = [t for t in able if counts[t.name] >= t.max_workers]
        if len(full) < len(able):  # a type has room of its own: the cluster's cap binds
            return f"the cluster is at max_workers ({self.config.max_workers})"
        return "; ".join(f"{t.name} is at its max_workers ({t.max_workers})" for t in full)

    # -- terminating -------------------------------------------------------------------------------
    def idle(self, nodes: tuple[Node, ...], now: float) -> None:
        # Demand packed onto a node (or requested bundles onto its total) keeps it.
        packed = {b.node_id for b in (*self.bins, *self.totals) if b.packed and b.node_id is not None}
        timeout = self.config.idle_timeout_s
        candidates = [
            (since, n)
            for n in nodes
            if (since := n.idle_since) is not None and n.node_type in self.types and n.node_id not in packed
        ]
        for since, node in sorted(candidates, key=lambda pair: (pair[0], pair[1].node_id)):
            if now - since < timeout or self.counts[node.node_type] <= self.types[node.node_type].min_workers:
                continue
            self.counts[node.node_type] -= 1
            self.terminate[node.node_id] = f"idle for {now - since:.0f} s (idle timeout {timeout:g} s)"

    # -- the plan --------------------------------------------------------------------------------
    def plan(self) -> Plan:
        new = [b for b in self.bins if b.node_id is None]
        # Requested resources are launched at once, as Ray's request_resources documents;
        # the rest at most max(5, speed x joined nodes) pending at a time.
        requested = [b for b in new if b.purpose == _REQUESTED]
        others = [b for b in new if b.purpose != _REQUESTED]
        allowed = (
            max(MIN_PENDING_LAUNCHES, math.floor(self.config.upscaling_speed * self.joined)) - self.pending
        )
        launched, held_back = requested + others[: max(allowed, 0)], others[max(allowed, 0) :]
        launch: Counter[str] = Counter(b.node_type for b in launched)
        reasons = []
        groups: dict[tuple[str, str], list[_Bin]] = {}
        for b in launched:
            groups.setdefault((b.node_type, b.purpose), []).append(b)
        for (node_type, purpose), bins in groups.items():
            demand: Resources = {}
            for b in bins:
                for k, v in b.demand.items():
                    demand[k] = demand.get(k, 0.0) + v
            what = (
                f"{_amounts(demand)} of {purpose}" if demand and not purpose.startswith("min_") else purpose
            )
            reasons.append(f"launching {len(bins)} x {node_type}: {what}")
        if held_back:
            reasons.append(
                f"{len(held_back)} more launch(es) wait: at most {max(allowed, 0) + self.pending} pending at once "
                f"(upscaling_speed {self.config.upscaling_speed:g})"
            )
        return Plan(dict(launch), self.terminate, reasons + self.waiting, self.unplaceable)


def plan(config: AutoscalingConfig, view: ClusterView, now: float, join_timeout_s: float) -> Plan:
    planner = _Planner(config, view, now, join_timeout_s)
    planner.min_workers()
    if view.requested:
        planner.requested(view.requested)
    for group in view.groups:
        planner.group(group)
    planner.demand(view.demand)
    planner.idle(view.nodes, now)
    return planner.plan()


def _pack(shapes: list[Shape], bins: list[_Bin]) -> list[Shape]:
    """First fit, largest shapes first, onto ``bins`` in order; the shapes that fit nowhere."""
    left = []
    for shape in _largest_first(shapes):
        spot = next((b for b in bins if b.fits(shape)), None)
        if spot is None:
            left.append(shape)
        else:
            spot.take(shape)
    return left


def _largest_first(shapes: list[Shape]) -> list[Shape]:
    return sorted(
        shapes,
        key=lambda s: (
            -s.resources.get("GPU", 0.0),
            -s.resources.get("CPU", 0.0),
            -sum(s.resources.values()),
        ),
    )


def _amounts(amounts: Resources) -> str:
    parts = []
    for name in sorted(amounts, key=lambda n: (n not in ("CPU", "GPU"), n)):
        value = amounts[name]
        if value:
            plural = "s" if name in ("CPU", "GPU") and value != 1 else ""
            parts.append(f"{value:g} {name}{plural}")
    return ", ".join(parts)


def _show(shape: Shape) -> str:
    text = "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shape.resources.items())) + "}"
    return f"{text} on labels {shape.selector}" if shape.selector else text
