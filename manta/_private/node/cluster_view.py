"""A node daemon's picture of the cluster, and its lease placement decisions.

The gcs publishes every node's state (on join, on death, and when its free resources
change); this keeps the latest per node, with this node's own free resources taken live
from its scheduler rather than from the gcs's echo. Pure: no sockets; the time is given.
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import NodeID
from manta._private.common.placement import Chosen, Decision, NodeEntry, Placer, allows, fits
from manta._private.rpc import messages as m

# A request sent to another node counts there until the gcs publishes that node's next
# state, or this long at most: one that never reached it (cancelled on its way, dropped by
# the gcs) must not make an idle node look full while nothing else changes there.
RESERVATION_S = 5.0


class ClusterView:
    def __init__(self, local: NodeEntry) -> None:
        self.local = local
        self.nodes: dict[NodeID, NodeEntry] = {local.node_id: local}
        self._placer = Placer()
        # Per node, what requests sent there still count for, and until when.
        self._reserved: dict[NodeID, list[tuple[float, dict[str, float]]]] = {}

    def update(self, state: m.NodeState) -> bool:
        """Apply a published node state; True if it may let waiting requests go elsewhere."""
        info = state.info
        if info.node_id == self.local.node_id:
            return False
        entry = self.nodes.get(info.node_id)
        if entry is None:
            if not state.alive:
                return False
            entry = self.nodes[info.node_id] = NodeEntry(
                info.node_id, f"{info.host}:{info.port}", dict(info.resources), {}, dict(info.labels)
            )
        entry.alive = state.alive
        entry.available = dict(state.available) if state.alive else {}
        self._reserved.pop(info.node_id, None)  # (what the node has now says it all)
        entry.total = dict(state.total or info.resources)
        return state.alive

    def place(
        self,
        need: dict[str, float],
        strategy: Any,
        spilled: bool,
        local_free: dict[str, float],
        locality: bool = False,
    ) -> Decision:
        """Where a lease request should be granted. A request already placed here (spilled
        back by another node, or sent by the gcs for an actor) stays when this node could
        ever run it: views differ between decision-makers, so no ping-pong. One sent here
        for its arguments' sake stays when it fits now."""
        self.local.available = local_free
        if spilled and allows(self.local, need, strategy):
            return Chosen(self.local)
        if locality and allows(self.local, need, strategy) and fits(self.local, need):
            return Chosen(self.local)
        return self._placer.place(list(self.nodes.values()), need, strategy, self.local.node_id)

    def reserve(self, node: NodeEntry, need: dict[str, float], now: float) -> None:
        """A request was just sent to ``node``: count it there until the gcs publishes
        that node's next state (or ``RESERVATION_S``), so a burst of requests does not
        all go to one node."""
        for name, amount in need.items():
            node.available[name] = node.available.get(name, 0.0) - amount
        self._reserved.setdefault(node.node_id, []).append((now + RESERVATION_S, need))

    def expire(self, now: float) -> bool:
        """Give back what reservations past their time held; True if any went."""
        expired = False
        for node_id, held in list(self._reserved.items()):
            lapsed = [need for until, need in held if until <= now]
            if not lapsed:
                continue
            expired = True
            node = self.nodes.get(node_id)
            if node is not None and node.alive:
                for name, amount in (item for need in lapsed for item in need.items()):
                    node.available[name] = node.available.get(name, 0.0) + amount
            kept = [(until, need) for until, need in held if until > now]
            if kept:
                self._reserved[node_id] = kept
            else:
                del self._reserved[node_id]
        return expired

    def better_elsewhere(
        self, need: dict[str, float], strategy: Any, local_free: dict[str, float]
    ) -> NodeEntry | None:
        """For a request waiting here: a remote node that would take it now, if any."""
        decision = self.place(need, strategy, False, local_free)
        if isinstance(decision, Chosen) and decision.node is not self.local:
            return decision.node
        return None
