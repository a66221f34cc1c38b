"""Cluster membership: which nodes are alive, their resources, and when one is dead.

Pure: ``register``/``heartbeat``/``disconnected``/``check`` take events and return the
nodes that died, so health rules are tested with a fake clock and no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manta._private.common.clock import Clock
from manta._private.common.ids import NodeID
from manta._private.rpc.messages import NodeInfo, NodeState


@dataclass(slots=True)
class NodeRecord:
    info: NodeInfo
    alive: bool = True
    available: dict[str, float] = field(default_factory=dict)
    pending: list[dict[str, float]] = field(default_factory=list)
    infeasible: list[dict[str, float]] = field(default_factory=list)
    last_seen: float = 0.0
    death_reason: str = ""
    # Totals with placement group bundles; None: as registered.
    total: dict[str, float] | None = None
    # The label selectors of the pending and infeasible shapes, in their order.
    pending_labels: list[dict[str, Any]] | None = None
    infeasible_labels: list[dict[str, Any]] | None = None


class NodeManager:
    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout = timeout_s
        self.nodes: dict[NodeID, NodeRecord] = {}

    def register(self, info: NodeInfo) -> NodeRecord:
        record = NodeRecord(info, available=dict(info.resources), last_seen=self._clock.monotonic())
        self.nodes[info.node_id] = record
        return record

    def restore(self, states: list[NodeState]) -> None:
        """Nodes a previous gcs knew: the live ones count as just heard from, so each has
        a full timeout to reconnect before it is declared dead."""
        now = self._clock.monotonic()
        for state in states:
            self.nodes[state.info.node_id] = NodeRecord(
                state.info,
                state.alive,
                dict(state.available),
                list(state.pending),
                list(state.infeasible),
                now,
                state.death_reason,
                state.total,
                state.pending_labels,
                state.infeasible_labels,
            )

    def heartbeat(
        self,
        node_id: NodeID,
        available: dict[str, float],
        pending: list[dict[str, float]],
        infeasible: list[dict[str, float]],
        total: dict[str, float] | None = None,
        labels: tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None] = (None, None),
    ) -> bool:
        """``labels``: the selectors of the pending and of the infeasible shapes."""
        record = self.nodes.get(node_id)
        if record is None or not record.alive:
            return False
        record.available = available
        record.total = total
        record.pending = pending
        record.infeasible = infeasible
        record.pending_labels, record.infeasible_labels = labels
        record.last_seen = self._clock.monotonic()
        return True

    def reserve(self, node_id: NodeID, need: dict[str, float]) -> None:
        """Count ``need`` as taken on the node until its next heartbeat says otherwise."""
        record = self.nodes.get(node_id)
        if record is not None and record.alive:
            for name, amount in need.items():
                record.available[name] = record.available.get(name, 0.0) - amount

    def mark_dead(self, node_id: NodeID, reason: str) -> NodeRecord | None:
        record = self.nodes.get(node_id)
        if record is None or not record.alive:
            return None
        record.alive = False
        record.death_reason = reason
        record.available = {}
        return record

    def check(self) -> list[NodeRecord]:
        """Declare dead every live node silent for longer than the timeout."""
        now = self._clock.monotonic()
        dead = []
        for node_id, record in self.nodes.items():
            if record.alive and now - record.last_seen > self._timeout:
                self.mark_dead(node_id, f"missed heartbeats for {now - record.last_seen:.1f} s")
                dead.append(record)
        return dead

    def alive(self) -> list[NodeRecord]:
        return [r for r in self.nodes.values() if r.alive]
