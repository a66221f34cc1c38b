"""Placement groups as the gcs sees them: a pure state machine.

    PENDING --bundles reserved on every node (two-phase)--> CREATED
       ^                                                      |
       +----- a node holding bundles died: RESCHEDULING <-----+
    any state --removed, or its job ended (unless detached)--> REMOVED

A group is placed whole or not at all: ``schedule`` picks a node per bundle; the shell
asks each node to reserve its bundles (prepare), and only when every node said yes tells
them to commit; a refusal anywhere releases what was reserved and the group waits for
the cluster to change. Each attempt has a number, so a late answer to an old attempt is
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from manta._private.common.ids import JobID, NodeID, PlacementGroupID
from manta._private.common.placement import BundlesWait, NodeEntry, place_bundles
from manta._private.rpc import codec
from manta._private.rpc.messages import PlacementGroupInfo, PlacementGroupSpec

PENDING, CREATED, RESCHEDULING, REMOVED = "PENDING", "CREATED", "RESCHEDULING", "REMOVED"


@dataclass(slots=True)
class GroupRecord:
    spec: PlacementGroupSpec
    state: str = PENDING
    # The node of each bundle, while reserved or being reserved.
    nodes: list[NodeID | None] = field(default_factory=list)
    attempt: int = 0
    reserving: bool = False
    message: str = ""
    # Whether the cluster could never hold it, and whether the gcs log said so (once).
    infeasible: bool = False
    warned: bool = False


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve the group's bundles: per node, its [index, resources] pairs."""

    pg_id: PlacementGroupID
    attempt: int
    per_node: dict[NodeID, list[list[object]]]


class NameTaken(ValueError):
    pass


class PgManager:
    def __init__(self) -> None:
        self.groups: dict[PlacementGroupID, GroupRecord] = {}
        self.named: dict[tuple[str, str], PlacementGroupID] = {}

    def create(self, spec: PlacementGroupSpec) -> GroupRecord:
        if spec.pg_id in self.groups:
            raise ValueError(f"placement group {spec.pg_id.hex()} already exists")
        if spec.name:
            taken = self.named.get((spec.namespace, spec.name))
            if taken is not None and self.groups[taken].state != REMOVED:
                raise NameTaken(
                    f"a placement group named {spec.name!r} already exists in namespace {spec.namespace!r}"
                )
            self.named[(spec.namespace, spec.name)] = spec.pg_id
        record = GroupRecord(spec, nodes=[None] * len(spec.bundles))
        self.groups[spec.pg_id] = record
        return record

    def restore(self, records: list[GroupRecord]) -> list[tuple[PlacementGroupID, list[NodeID]]]:
        """Take back a previous gcs's groups. Created ones stay where they are (their nodes
        kept the bundles); ones caught mid-reservation start over: (group, nodes whose
        partial reservation of it must be released)."""
        release = []
        for record in records:
            self.groups[record.spec.pg_id] = record
            if record.spec.name and record.state != REMOVED:
                self.named[(record.spec.namespace, record.spec.name)] = record.spec.pg_id
            if record.state in (PENDING, RESCHEDULING):
                holders = sorted({n for n in record.nodes if n is not None})
                record.reserving = False
                record.attempt += 1
                record.nodes = [None] * len(record.spec.bundles)
                if holders:
                    release.append((record.spec.pg_id, holders))
        return release

    def schedule(self, pg_id: PlacementGroupID, nodes: list[NodeEntry]) -> Reserve | BundlesWait | None:
        """Where to reserve a waiting group now; None if it is not waiting (or a reservation
        is already under way)."""
        record = self.groups.get(pg_id)
        if record is None or record.reserving or record.state not in (PENDING, RESCHEDULING):
            return None
        spec = record.spec
        placed = place_bundles(nodes, spec.bundles, spec.strategy, spec.label_selectors)
        if isinstance(placed, BundlesWait):
            record.message = placed.reason
            record.infeasible = placed.infeasible
            return placed
        record.infeasible = False
        record.attempt += 1
        record.reserving = True
        record.nodes = [n.node_id for n in placed]
        per_node: dict[NodeID, list[list[object]]] = {}
        for index, node in enumerate(placed):
            per_node.setdefault(node.node_id, []).append([index, spec.bundles[index]])
        return Reserve(pg_id, record.attempt, per_node)

    def reserved(self, pg_id: PlacementGroupID, attempt: int, ok: bool) -> bool:
        """The outcome of a reservation; True if the group is now CREATED (commit it)."""
        record = self.groups.get(pg_id)
        if record is None or record.attempt != attempt or record.state == REMOVED:
            return False
        record.reserving = False
        if not ok:
            record.nodes = [None] * len(record.spec.bundles)
            record.message = "a node refused its bundles (its resources were taken meanwhile); trying again"
            return False
        record.state = CREATED
        record.message = ""
        return True

    def remove(self, pg_id: PlacementGroupID) -> list[NodeID]:
        """Removed: the nodes that hold (or are reserving) its bundles, to release them."""
        record = self.groups.get(pg_id)
        if record is None or record.state == REMOVED:
            return []
        record.state = REMOVED
        record.reserving = False
        record.message = ""
        holders = sorted({n for n in record.nodes if n is not None})
        record.nodes = [None] * len(record.spec.bundles)
        return holders

    def node_died(self, node_id: NodeID) -> list[tuple[PlacementGroupID, list[NodeID]]]:
        """Groups with bundles on the dead node are placed again, whole: (group, the live
        nodes whose bundles of it must be released first)."""
        affected = []
        for pg_id, record in self.groups.items():
            if record.state == REMOVED or node_id not in record.nodes:
                continue
            others = sorted({n for n in record.nodes if n is not None and n != node_id})
            record.state = RESCHEDULING if record.state == CREATED else PENDING
            record.reserving = False
            record.attempt += 1  # answers to a reservation in flight are stale now
            record.nodes = [None] * len(record.spec.bundles)
            affected.append((pg_id, others))
        return affected

    def job_finished(self, job_id: JobID) -> list[PlacementGroupID]:
        """Groups that end with their job (all but detached ones)."""
        return [
            pg_id
            for pg_id, r in self.groups.items()
            if r.spec.job_id == job_id and not r.spec.detached and r.state != REMOVED
        ]

    def waiting(self) -> list[PlacementGroupID]:
        return [
            pg_id
            for pg_id, r in self.groups.items()
            if r.state in (PENDING, RESCHEDULING) and not r.reserving
        ]

    def lookup(self, name: str, namespace: str) -> PlacementGroupID | None:
        pg_id = self.named.get((namespace, name))
        if pg_id is None or self.groups[pg_id].state == REMOVED:
            return None
        return pg_id

    def info(self, pg_id: PlacementGroupID) -> PlacementGroupInfo | None:
        record = self.groups.get(pg_id)
        if record is None:
            return None
        spec = record.spec
        return PlacementGroupInfo(
            spec.pg_id,
            spec.name,
            spec.namespace,
            record.state,
            spec.bundles,
            spec.strategy,
            [n.hex() if n is not None else "" for n in record.nodes],
            spec.detached,
            record.message,
            record.infeasible,
        )


def encode_group(record: GroupRecord) -> bytes:
    """A group's record as the gcs stores it."""
    return codec.encode(
        [record.spec, record.state, [None if n is None else bytes(n) for n in record.nodes], record.attempt]
    )


def decode_group(blob: bytes) -> GroupRecord:
    spec, state, nodes, attempt = codec.decode(blob)
    return GroupRecord(spec, state, [None if n is None else NodeID(n) for n in nodes], attempt)
