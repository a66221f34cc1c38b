"""``manta memory``: what holds memory in the cluster, and why it is still alive.

Every node reports its object store (each object's size, owner, where it is, who pins it)
and asks every process connected to it for its reference table (live refs, pending tasks,
values holding refs, borrowers). This module joins the two into one row per object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manta._private.api.client_ops import MemoryReport
from manta._private.api.context import require_initialized
from manta._private.api.node_calls import ask_nodes
from manta._private.common.config import Config
from manta._private.common.ids import NodeID, ObjectID
from manta._private.object_store.stats import format_bytes
from manta._private.rpc import messages as m


@dataclass(frozen=True, slots=True)
class ObjectRow:
    object_id: str
    size: int
    owner_pid: int
    where: str  # "inline (owner's memory)", "store", "spilled", "being written", ...
    why_alive: str
    call_site: str
    node: str


@dataclass(frozen=True, slots=True)
class NodeMemory:
    node_id: str
    host: str
    capacity: int
    used_bytes: int
    spilled_bytes: int
    rows: list[ObjectRow]


async def gather_reports(
    nodes: list[m.NodeState], token: bytes, config: Config, local: tuple[NodeID, Any] | None = None
) -> list[m.MemoryReport]:
    """Ask every live node for its memory report (``local``: this process's node and an
    open connection to it, reused when given)."""
    return [report for _node, report in await ask_nodes(nodes, m.GetMemoryReport(), token, config, local)]


def summarize(reports: list[m.MemoryReport]) -> list[NodeMemory]:
    """One row per object, with the owner's view joined to the stores' view."""
    owners: dict[ObjectID, tuple[int, m.ReferenceInfo]] = {}
    borrowers: dict[ObjectID, int] = {}
    for report in reports:
        for process in report.processes:
            for ref in process.references:
                if ref.owned:
                    owners[ref.object_id] = (process.pid, ref)
                elif ref.local_refs > 0:
                    borrowers[ref.object_id] = borrowers.get(ref.object_id, 0) + ref.local_refs
    nodes = []
    placed: set[ObjectID] = set()
    for report in reports:
        rows = []
        for obj in report.objects:
            placed.add(obj.object_id)
            pid, owner_ref = owners.get(obj.object_id, (0, None))
            rows.append(
                _row(obj.object_id, obj.size, pid, obj.state, owner_ref, borrowers, obj.pins, report.node_id)
            )
        nodes.append(
            NodeMemory(
                report.node_id.hex(),
                report.host,
                report.capacity,
                report.used_bytes,
                report.spilled_bytes,
                rows,
            )
        )
    if nodes:
        # Values small enough to live in their owner's memory are listed with the first node.
        inline = [
            _row(object_id, ref.size, pid, "inline (owner's memory)", ref, borrowers, 0, None)
            for object_id, (pid, ref) in owners.items()
            if object_id not in placed and ref.where != "store"
        ]
        nodes[0].rows.extend(inline)
    return nodes


def _row(
    object_id: ObjectID,
    size: int,
    owner_pid: int,
    where: str,
    ref: m.ReferenceInfo | None,
    borrowers: dict[ObjectID, int],
    pins: int,
    node_id: NodeID | None,
) -> ObjectRow:
    why = []
    if ref is not None:
        if ref.local_refs:
            why.append(f"local ref x{ref.local_refs}")
        if ref.submitted:
            why.append(f"pending task x{ref.submitted}")
        if ref.contained:
            why.append(f"inside a value x{ref.contained}")
        if ref.borrowers:
            why.append(f"borrowed by {ref.borrowers} process(es)")
        if ref.pinned:
            why.append(f"pickled outside Manta x{ref.pinned}")
    if borrowers.get(object_id):
        why.append(f"borrower refs x{borrowers[object_id]}")
    if pins:
        why.append(f"pinned by get x{pins}")
    if ref is None and not why:
        why.append("owner unknown (freed, or its owner is gone)")
    return ObjectRow(
        object_id.hex(),
        size,
        owner_pid,
        where,
        ", ".join(why) or "nothing (about to be freed)",
        ref.call_site if ref is not None else "",
        node_id.hex()[:8] if node_id is not None else "",
    )


def render(nodes: list[NodeMemory]) -> str:
    lines = []
    for node in nodes:
        lines.append(
            f"======== node {node.node_id[:8]} ({node.host}): {format_bytes(node.used_bytes)} of "
            f"{format_bytes(node.capacity)} store memory used, {format_bytes(node.spilled_bytes)} spilled ========"
        )
        lines.append(f"{'OBJECT ID':<58} {'SIZE':>10} {'OWNER PID':>9}  {'WHERE':<24} WHY ALIVE")
        for row in sorted(node.rows, key=lambda r: -r.size):
            lines.append(
                f"{row.object_id:<58} {format_bytes(row.size):>10} {row.owner_pid or '?':>9}  "
                f"{row.where:<24} {row.why_alive}" + (f"  [{row.call_site}]" if row.call_site else "")
            )
        if not node.rows:
            lines.append("(no objects)")
    return "\n".join(lines)


def memory_summary() -> str:
    """A table of every object in the cluster: size, owner, where it lives, why it is alive
    (set MANTA_RECORD_CALLSITES=1 to also see where each was created)."""
    return render(memory_report())


def memory_report() -> list[NodeMemory]:
    """``memory_summary`` as data: one NodeMemory per node, one ObjectRow per object."""
    worker = require_initialized("asking for a memory report")
    if getattr(worker, "is_remote", False):  # a remote driver: its session on the head asks
        return worker.call(MemoryReport())  # type: ignore[attr-defined,no-any-return]
    nodes = worker.call_gcs(m.GetNodes())

    async def run() -> list[m.MemoryReport]:
        return await gather_reports(
            nodes, worker.session.token, worker.config, local=(worker.node_id, worker.node_conn)
        )

    reports: list[m.MemoryReport] = worker.io.run(run(), 60)
    return summarize(reports)
