"""Which node a task or actor goes to: the scheduling policies, as pure functions.

Node daemons decide for lease requests (stay here, or spill back to another node); the gcs
decides for actors. Both see the cluster as a list of ``NodeEntry`` (each node's totals,
what is free, its labels) and call ``place`` with the request's resource needs and the
wire form of its scheduling strategy (see ``api/scheduling.py``).

Policies, as Ray documents them:
- DEFAULT (hybrid): stay on the preferred (local) node while it fits and is under the
  spread threshold; otherwise the least utilized node that fits now; if none fits now,
  queue where it could ever fit, the preferred node first.
- SPREAD: round robin over the nodes that fit now (else that could ever fit).
- node affinity: that node, whatever its load; if it is dead or can never fit the
  request, any node (soft) or fail (hard).
- node labels: DEFAULT among the nodes whose labels match ``hard``, preferring those that
  also match ``soft``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.ids import NodeID

# DEFAULT keeps work on the preferred node until it is this busy (Ray's default).
SPREAD_THRESHOLD = 0.5


@dataclass(slots=True)
class NodeEntry:
    node_id: NodeID
    address: str  # host:port of its node daemon
    total: dict[str, float]
    available: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)
    alive: bool = True


@dataclass(frozen=True, slots=True)
class Chosen:
    """Place it on this node (queue there if it is busy)."""

    node: NodeEntry


@dataclass(frozen=True, slots=True)
class Infeasible:
    """No live node can ever fit it: keep it pending until one joins."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unschedulable:
    """It must fail: a hard constraint names a node that is dead or can never fit it."""

    reason: str


Decision = Chosen | Infeasible | Unschedulable


class Placer:
    """``place`` plus the round-robin position SPREAD needs between calls."""

    def __init__(self) -> None:
        self._spread = itertools.count()
        self._last_chosen: dict[NodeID, int] = {}

    def place(
        self,
        nodes: list[NodeEntry],
        need: dict[str, float],
        strategy: Any,
        preferred: NodeID | None = None,
    ) -> Decision:
        alive = [n for n in nodes if n.alive]
        kind = strategy.get("type") if isinstance(strategy, dict) else strategy
        if kind == "node_affinity":
            return self._affinity(alive, need, strategy, preferred)
        if kind == "node_label":
            return self._labels(alive, need, strategy, preferred)
        if kind == "SPREAD":
            return self._round_robin(alive, need)
        return hybrid(alive, need, preferred)

    def _affinity(
        self,
        alive: list[NodeEntry],
        need: dict[str, float],
        strategy: dict[str, Any],
        preferred: NodeID | None,
    ) -> Decision:
        target = next((n for n in alive if n.node_id.hex() == strategy.get("node_id")), None)
        if target is not None and feasible(target, need):
            return Chosen(target)
        if strategy.get("soft"):
            return hybrid(alive, need, preferred)
        why = "is not alive" if target is None else f"can never fit {need}"
        return Unschedulable(
            f"the node {strategy.get('node_id')} named by a hard NodeAffinitySchedulingStrategy {why}"
        )

    def _labels(
        self,
        alive: list[NodeEntry],
        need: dict[str, float],
        strategy: dict[str, Any],
        preferred: NodeID | None,
    ) -> Decision:
        hard = strategy.get("hard") or {}
        matching = [n for n in alive if labels_match(n.labels, hard)]
        if not matching:
            return Infeasible(f"no live node has labels matching {hard}")
        soft = strategy.get("soft") or {}
        if soft:
            better = [n for n in matching if labels_match(n.labels, soft)]
            if any(fits(n, need) for n in better):
                matching = better
        return hybrid(matching, need, preferred)

    def _round_robin(self, alive: list[NodeEntry], need: dict[str, float]) -> Decision:
        candidates = [n for n in alive if fits(n, need)] or [n for n in alive if feasible(n, need)]
        if not candidates:
            return _infeasible(need)
        # The candidate chosen longest ago (never chosen first): a round robin that stays
        # fair while the set of candidates changes between calls.
        node = min(candidates, key=lambda n: (self._last_chosen.get(n.node_id, -1), bytes(n.node_id)))
        self._last_chosen[node.node_id] = next(self._spread)
        return Chosen(node)


def allows(node: NodeEntry, need: dict[str, float], strategy: Any) -> bool:
    """Whether ``node`` could ever run the request under its strategy's hard rules: for a
    request another decision-maker already placed there, which stays rather than bounce."""
    if not node.alive or not feasible(node, need):
        return False
    if isinstance(strategy, dict):
        if strategy.get("type") == "node_affinity" and not strategy.get("soft"):
            return node.node_id.hex() == strategy.get("node_id")
        if strategy.get("type") == "node_label":
            return labels_match(node.labels, strategy.get("hard") or {})
    return True


def hybrid(alive: list[NodeEntry], need: dict[str, float], preferred: NodeID | None) -> Decision:
    if not need.get("GPU") and any(n.total.get("GPU", 0.0) > 0 for n in alive):
        # As Ray does by default: work that needs no GPU goes to a node without GPUs when
        # one fits it now, keeping GPU nodes for the work that needs them.
        plain = _hybrid([n for n in alive if not n.total.get("GPU", 0.0)], need, preferred)
        if isinstance(plain, Chosen) and fits(plain.node, need):
            return plain
    return _hybrid(alive, need, preferred)


def _hybrid(alive: list[NodeEntry], need: dict[str, float], preferred: NodeID | None) -> Decision:
    local = next((n for n in alive if n.node_id == preferred), None)
    if local is not None and fits(local, need) and utilization(local, need) <= SPREAD_THRESHOLD:
        return Chosen(local)
    now = [n for n in alive if fits(n, need)]
    if now:
        # Least utilized after placing; the preferred node wins ties (no network hop).
        return Chosen(min(now, key=lambda n: (utilization(n, need), n is not local)))
    if local is not None and feasible(local, need):
        return Chosen(local)
    ever = [n for n in alive if feasible(n, need)]
    if ever:
        return Chosen(min(ever, key=lambda n: utilization(n, need)))
    return _infeasible(need)


def _infeasible(need: dict[str, float]) -> Infeasible:
    return Infeasible(f"no live node can ever provide {need}")


def feasible(node: NodeEntry, need: dict[str, float]) -> bool:
    return all(node.total.get(k, 0.0) >= v for k, v in need.items() if v > 0)


def fits(node: NodeEntry, need: dict[str, float]) -> bool:
    return all(node.available.get(k, 0.0) >= v for k, v in need.items() if v > 0)


def utilization(node: NodeEntry, need: dict[str, float]) -> float:
    """The busiest requested resource's used fraction once ``need`` is placed there."""
    worst = 0.0
    for name, amount in need.items():
        total = node.total.get(name, 0.0)
        if total > 0 and amount > 0:
            worst = max(worst, (total - node.available.get(name, 0.0) + amount) / total)
    return worst


_LABEL_OPERATORS = ("in", "not_in", "exists", "does_not_exist")


def check_strategy(strategy: Any) -> None:
    """Raise ``ValueError`` unless ``strategy`` is a scheduling strategy's wire form (it
    comes from a peer: a malformed one must be an error reply, not a failure later)."""
    if strategy is None or strategy in ("DEFAULT", "SPREAD"):
        return
    if not isinstance(strategy, dict):
        raise ValueError(f"unknown scheduling strategy {strategy!r}")
    kind = strategy.get("type")
    if kind == "node_affinity":
        if not isinstance(strategy.get("node_id"), str) or not isinstance(strategy.get("soft"), bool):
            raise ValueError(f"a node affinity strategy needs node_id (str) and soft (bool): {strategy!r}")
    elif kind == "node_label":
        for part in ("hard", "soft"):
            check_selector(strategy.get(part) or {})
    elif kind == "placement_group":
        index = strategy.get("bundle_index")
        if not isinstance(strategy.get("placement_group_id"), (str, type(None))) or not (
            isinstance(index, int) and not isinstance(index, bool)
        ):
            raise ValueError(
                f"a placement group strategy needs placement_group_id and bundle_index: {strategy!r}"
            )
    else:
        raise ValueError(f"unknown scheduling strategy type {kind!r}")


def check_selector(selector: Any) -> None:
    """ValueError unless ``selector`` maps label names to [operator, [values...]]."""
    if not isinstance(selector, dict):
        raise ValueError(f"a label selector must map label names to [operator, values]: {selector!r}")
    for key, rule in selector.items():
        if (
            not isinstance(key, str)
            or not isinstance(rule, (list, tuple))
            or len(rule) != 2
            or rule[0] not in _LABEL_OPERATORS
            or not isinstance(rule[1], (list, tuple))
            or not all(isinstance(v, str) for v in rule[1])
        ):
            raise ValueError(f"bad label rule {key!r}: {rule!r} (expected [operator, [values...]])")


def hard_labels(strategy: Any) -> dict[str, Any]:
    """The label selector a request's node must satisfy ({} when its strategy has none)."""
    if isinstance(strategy, dict) and strategy.get("type") == "node_label":
        return dict(strategy.get("hard") or {})
    return {}


def labels_match(labels: dict[str, str], selector: dict[str, Any]) -> bool:
    """Whether node ``labels`` satisfy every ``key: [operator, values]`` of ``selector``."""
    for key, (op, values) in selector.items():
        present = key in labels
        if op == "in" and not (present and labels[key] in values):
            return False
        if op == "not_in" and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "does_not_exist" and present:
            return False
    return True


# -- placement groups ---------------------------------------------------------------------------

PG_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


@dataclass(frozen=True, slots=True)
class BundlesWait:
    """The bundles cannot all be reserved now; ``infeasible``: not even on an idle cluster."""

    reason: str
    infeasible: bool


def place_bundles(
    nodes: list[NodeEntry],
    bundles: list[dict[str, float]],
    strategy: str,
    selectors: list[dict[str, Any]] | None = None,
    kept: dict[int, NodeID] | None = None,
) -> dict[int, NodeEntry] | BundlesWait:
    """A node for every bundle not in ``kept`` (bundles already reserved, which stay where
    they are), all reservable now, obeying the strategy over the whole group: STRICT_PACK
    all on one node, STRICT_SPREAD each on its own node, PACK on as few nodes as it can,
    SPREAD on as many."""
    alive = [n for n in nodes if n.alive]
    by_id = {n.node_id: n for n in alive}
    kept = {i: node for i, node in (kept or {}).items() if node in by_id}
    allowed = [
        [n for n in alive if labels_match(n.labels, (selectors or [{}] * len(bundles))[i] or {})]
        for i in range(len(bundles))
    ]
    todo = [i for i in range(len(bundles)) if i not in kept]
    fixed = {i: by_id[node] for i, node in kept.items()}
    ever = _assign(bundles, todo, strategy, allowed, {}, lambda n: dict(n.total))
    if ever is None:
        unmatched = [i for i in range(len(bundles)) if not allowed[i]]
        if unmatched and selectors:
            reason = f"no live node has the labels bundle {unmatched[0]} asks for ({selectors[unmatched[0]]})"
        else:
            reason = _bundles_short(alive, bundles, strategy)
        return BundlesWait(reason, True)
    now = _assign(bundles, todo, strategy, allowed, fixed, lambda n: dict(n.available))
    if now is None:
        return BundlesWait("not enough free resources yet; waiting for running work to finish", False)
    return now


def _assign(
    bundles: list[dict[str, float]],
    todo: list[int],
    strategy: str,
    allowed: list[list[NodeEntry]],
    fixed: dict[int, NodeEntry],
    capacity: Any,
) -> dict[int, NodeEntry] | None:
    """Nodes for the bundles in ``todo`` with ``fixed`` ones already placed (their
    resources are no longer in ``capacity``), or None."""
    free = {n.node_id: capacity(n) for candidates in allowed for n in candidates}

    def fits_in(node: NodeEntry, need: dict[str, float]) -> bool:
        return all(free[node.node_id].get(k, 0.0) >= v for k, v in need.items() if v > 0)

    def busy(node: NodeEntry, need: dict[str, float]) -> float:
        """How full the node would be in the resources ``need`` asks for, once placed."""
        left = free[node.node_id]
        return max(
            (
                (node.total.get(k, 0.0) - left.get(k, 0.0) + v) / node.total[k]
                for k, v in need.items()
                if v > 0 and node.total.get(k)
            ),
            default=0.0,
        )

    def take(node: NodeEntry, need: dict[str, float]) -> None:
        for k, v in need.items():
            free[node.node_id][k] = free[node.node_id].get(k, 0.0) - v

    used: list[NodeEntry] = []
    for kept_node in fixed.values():
        if kept_node not in used:
            used.append(kept_node)
    if strategy in ("STRICT_PACK", "PACK"):
        total: dict[str, float] = {}
        for i in todo:
            for k, v in bundles[i].items():
                total[k] = total.get(k, 0.0) + v
        common = [n for n in allowed[todo[0]] if all(n in allowed[i] for i in todo)] if todo else []
        if used and strategy == "STRICT_PACK":
            common = [n for n in common if n is used[0]]
        elif used:
            common = [n for n in common if n in used] or common
        fitting = [n for n in common if fits_in(n, total)]
        if fitting:  # PACK's first choice too: all on one node (the kept ones' if it can)
            node = min(fitting, key=lambda n: (n not in used, busy(n, total), bytes(n.node_id)))
            return dict.fromkeys(todo, node)
        if strategy == "STRICT_PACK":
            return None
    if strategy == "STRICT_SPREAD":
        return _distinct_nodes(bundles, todo, allowed, used, fits_in)
    chosen: dict[int, NodeEntry] = {}
    for i in sorted(todo, key=lambda i: -sum(bundles[i].values())):
        candidates = [n for n in allowed[i] if fits_in(n, bundles[i])]
        if strategy == "PACK":
            candidates = [n for n in candidates if n in used] or candidates
        elif strategy == "SPREAD":
            candidates = [n for n in candidates if n not in used] or candidates
        if not candidates:
            return None
        # The roomiest candidate: PACK then keeps filling it; SPREAD balances load.
        node = min(candidates, key=lambda n: (busy(n, bundles[i]), bytes(n.node_id)))
        take(node, bundles[i])
        chosen[i] = node
        if node not in used:
            used.append(node)
    return chosen


def _distinct_nodes(
    bundles: list[dict[str, float]],
    todo: list[int],
    allowed: list[list[NodeEntry]],
    used: list[NodeEntry],
    fits_in: Any,
) -> dict[int, NodeEntry] | None:
    """One node per bundle, none shared (nor one of ``used``): a bipartite matching, so a
    bundle that fits few nodes is never crowded out by one that fits many."""
    options = {i: [n for n in allowed[i] if n not in used and fits_in(n, bundles[i])] for i in todo}
    holder: dict[NodeID, int] = {}

    def place(i: int, seen: set[NodeID]) -> bool:
        for node in options[i]:
            if node.node_id in seen:
                continue
            seen.add(node.node_id)
            if node.node_id not in holder or place(holder[node.node_id], seen):
                holder[node.node_id] = i
                return True
        return False

    for i in sorted(todo, key=lambda i: len(options[i])):
        if not place(i, set()):
            return None
    by_id = {n.node_id: n for i in todo for n in options[i]}
    return {i: by_id[node_id] for node_id, i in holder.items()}


def _bundles_short(alive: list[NodeEntry], bundles: list[dict[str, float]], strategy: str) -> str:
    """Which resource the cluster lacks for the group, for its one warning."""
    for bundle in bundles:
        if not any(feasible(n, bundle) for n in alive):
            short = [
                f"{k}: {v:g} (the largest node has {max((n.total.get(k, 0.0) for n in alive), default=0):g})"
                for k, v in bundle.items()
                if not any(n.total.get(k, 0.0) >= v for n in alive)
            ]
            return f"a bundle {bundle} fits no node: it needs {', '.join(short) or 'more than any node has'}"
    if strategy == "STRICT_SPREAD":
        return f"STRICT_SPREAD needs {len(bundles)} nodes that can each hold a bundle; the cluster has fewer"
    if strategy == "STRICT_PACK":
        return "STRICT_PACK needs one node that holds every bundle; no node is that large"
    return "the bundles together exceed what the cluster has"
