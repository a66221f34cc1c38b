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
    # The bundles of the reservation under way (the rest stay where they are).
    reserving: list[int] = field(default_factory=list)
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


# What a reservation's outcome asks of the shell.
COMMIT, ROLL_BACK = "commit", "roll back"


class NameTaken(ValueError):
    pass


class PgManager:
    def __init__(self) -> None:
        self.groups: dict[PlacementGroupID, GroupRecord] = {}
        self.named: dict[tuple[str, str], PlacementGroupID] = {}

    def create(self, spec: PlacementGroupSpec) -> GroupRecord:
        """The group's record (a request sent again after a gcs restart gets the same one)."""
        known = self.groups.get(spec.pg_id)
        if known is not None and known.spec == spec:
            return known
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

    def restore(self, records: list[GroupRecord]) -> list[tuple[PlacementGroupID, list[NodeID], int]]:
        """Take back a previous gcs's groups. Reserved bundles stay where they are (their
        nodes kept them); a reservation caught half-way starts over: (group, nodes whose
        part of it must be released, the attempt that made it)."""
        release = []
        for record in records:
            self.groups[record.spec.pg_id] = record
            if record.spec.name and record.state != REMOVED:
                self.named[(record.spec.namespace, record.spec.name)] = record.spec.pg_id
            if record.state in (PENDING, RESCHEDULING) and record.reserving:
                holders = sorted({n for i in record.reserving if (n := record.nodes[i]) is not None})
                for i in record.reserving:
                    record.nodes[i] = None
                record.reserving = []
                if holders:
                    release.append((record.spec.pg_id, holders, record.attempt))
                record.attempt += 1
        return release

    def schedule(self, pg_id: PlacementGroupID, nodes: list[NodeEntry]) -> Reserve | BundlesWait | None:
        """Where to reserve a waiting group's unplaced bundles now; None if it is not
        waiting (or a reservation is already under way)."""
        record = self.groups.get(pg_id)
        if record is None or record.reserving or record.state not in (PENDING, RESCHEDULING):
            return None
        spec = record.spec
        kept = {i: n for i, n in enumerate(record.nodes) if n is not None}
        placed = place_bundles(nodes, spec.bundles, spec.strategy, spec.label_selectors, kept)
        if isinstance(placed, BundlesWait):
            record.message = placed.reason
            record.infeasible = placed.infeasible
            return placed
        record.infeasible = False
        record.attempt += 1
        record.reserving = sorted(placed)
        per_node: dict[NodeID, list[list[object]]] = {}
        for index, node in sorted(placed.items()):
            record.nodes[index] = node.node_id
            per_node.setdefault(node.node_id, []).append([index, spec.bundles[index]])
        return Reserve(pg_id, record.attempt, per_node)

    def reserved(self, pg_id: PlacementGroupID, attempt: int, ok: bool) -> str | None:
        """The outcome of a reservation: COMMIT (the group is CREATED), ROLL_BACK (a node
        said no, or the group was removed or moved on meanwhile: release this attempt's
        bundles), or None."""
        record = self.groups.get(pg_id)
        if record is None or record.attempt != attempt or record.state == REMOVED:
            return ROLL_BACK  # superseded: only this attempt's own bundles are released
        if not ok:
            for i in record.reserving:
                record.nodes[i] = None
            record.reserving = []
            record.message = "a node refused its bundles (its resources were taken meanwhile); trying again"
            return ROLL_BACK
        record.reserving = []
        record.state = CREATED
        record.message = ""
        return COMMIT

    def remove(self, pg_id: PlacementGroupID) -> list[NodeID]:
        """Removed: the nodes that hold (or are reserving) its bundles, to release them."""
        record = self.groups.get(pg_id)
        if record is None or record.state == REMOVED:
            return []
        record.state = REMOVED
        record.reserving = []
        record.message = ""
        holders = sorted({n for n in record.nodes if n is not None})
        record.nodes = [None] * len(record.spec.bundles)
        return holders

    def node_died(self, node_id: NodeID) -> list[PlacementGroupID]:
        """Groups with bundles on the dead node: those bundles (and a reservation under
        way) are placed again; bundles on live nodes stay, with the work using them."""
        affected = []
        for pg_id, record in self.groups.items():
            if record.state == REMOVED or node_id not in record.nodes:
                continue
            for i in record.reserving:
                record.nodes[i] = None  # its outcome will be stale; it releases itself
            record.reserving = []
            record.attempt += 1
            record.nodes = [None if n == node_id else n for n in record.nodes]
            record.state = RESCHEDULING if record.state == CREATED else PENDING
            affected.append(pg_id)
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

    def committed_on(self, node_id: NodeID) -> list[tuple[PlacementGroupID, list[int], int]]:
        """(group, its bundles on ``node_id``, attempt) for every created group: told to a
        node again when it registers, since a commit is one message the node never answers
        and a gcs killed just after sending it may not have delivered it (committing twice
        changes nothing on the node)."""
        found = []
        for pg_id, record in self.groups.items():
            if record.state == CREATED:
                indices = [i for i, node in enumerate(record.nodes) if node == node_id]
                if indices:
                    found.append((pg_id, indices, record.attempt))
        return found

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
        [
            record.spec,
            record.state,
            [None if n is None else bytes(n) for n in record.nodes],
            record.attempt,
            record.reserving,
        ]
    )


def decode_group(blob: bytes) -> GroupRecord:
    spec, state, nodes, attempt, reserving = codec.decode(blob)
    return GroupRecord(
        spec, state, [None if n is None else NodeID(n) for n in nodes], attempt, list(reserving)
    )
