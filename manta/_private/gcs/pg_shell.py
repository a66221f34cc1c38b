"""The gcs's placement group I/O: two-phase reservation on node daemons, and the RPCs.

Phase one asks every chosen node to reserve its bundles (``PrepareBundles``, all or none
per node); phase two, only once all said yes, tells them to commit (``CommitBundles``).
A no, an error or a lost node rolls back what was reserved (``ReleaseBundles``) and the
group waits: it is tried again when nodes join or die, and every second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from manta._private.common.aio import resolve, spawn
from manta._private.common.ids import JobID, NodeID, PlacementGroupID
from manta._private.common.placement import PG_STRATEGIES, BundlesWait, NodeEntry
from manta._private.common.resources import validate_request
from manta._private.gcs.pg_manager import COMMIT, NameTaken, PgManager, Reserve, decode_group, encode_group
from manta._private.gcs.storage import Storage
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, Dispatcher

logger = logging.getLogger(__name__)

_GROUPS = "placement_groups"


class PlacementGroupDirector:
    def __init__(
        self,
        node_conn: Callable[[NodeID], Connection | None],
        nodes: Callable[[], list[NodeEntry]],
        removed: Callable[[PlacementGroupID], None],
        publish: Callable[[str, bytes, Any], None],
        storage: Storage,
    ) -> None:
        self.manager = PgManager()
        self._node_conn = node_conn
        self._nodes = nodes
        self._removed = removed  # the actors in it end
        self._publish = publish
        self._storage = storage
        # Releases for nodes that have not reconnected to this gcs yet (after a restart).
        self._pending_releases: dict[NodeID, list[m.ReleaseBundles]] = {}
        self._waiters: dict[PlacementGroupID, list[asyncio.Future[bool]]] = {}

    def register_handlers(self, d: Dispatcher) -> None:
        d.register(m.CreatePlacementGroup, self._h_create)
        d.register(m.RemovePlacementGroup, lambda c, msg: self.remove(msg.pg_id))
        d.register(m.GetPlacementGroup, self._h_get)
        d.register(
            m.ListPlacementGroups, lambda c, msg: [self.manager.info(pg_id) for pg_id in self.manager.groups]
        )
        d.register(m.WaitPlacementGroup, self._h_wait)

    # -- handlers ------------------------------------------------------------------------------
    def _h_create(self, conn: Connection, msg: m.CreatePlacementGroup) -> m.PlacementGroupInfo:
        spec = msg.spec
        # Clients check all this first; a peer that did not is refused, not believed.
        if spec.strategy not in PG_STRATEGIES:
            raise ValueError(
                f"unknown placement group strategy {spec.strategy!r}; use one of {PG_STRATEGIES}"
            )
        if not spec.bundles:
            raise ValueError("a placement group needs at least one bundle")
        for bundle in spec.bundles:
            validate_request(bundle, "placement group bundle")
            if not any(v > 0 for v in bundle.values()):
                raise ValueError(f"bundle {bundle} asks for nothing")
        if spec.label_selectors is not None:
            if len(spec.label_selectors) != len(spec.bundles):
                raise ValueError("bundle label selectors must be one per bundle")
            for selector in spec.label_selectors:
                if not isinstance(selector, dict) or not all(_is_condition(c) for c in selector.values()):
                    raise ValueError(
                        f"a bundle label selector maps labels to [operator, values]: {selector!r}"
                    )
        try:
            self.manager.create(spec)
        except NameTaken as e:
            raise ValueError(str(e)) from None
        self._save(spec.pg_id)
        self._try(spec.pg_id)
        info = self.manager.info(spec.pg_id)
        assert info is not None
        return info

    def _h_get(self, conn: Connection, msg: m.GetPlacementGroup) -> m.PlacementGroupInfo | None:
        pg_id = msg.pg_id if msg.pg_id is not None else self.manager.lookup(msg.name, msg.namespace)
        return None if pg_id is None else self.manager.info(pg_id)

    async def _h_wait(self, conn: Connection, msg: m.WaitPlacementGroup) -> bool:
        info = self.manager.info(msg.pg_id)
        if info is None:
            raise ValueError(f"there is no placement group {msg.pg_id.hex()}")
        if info.state in ("CREATED", "REMOVED"):
            return info.state == "CREATED"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(msg.pg_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(msg.timeout_s, 0.0))
        except asyncio.TimeoutError:
            return False

    # -- events --------------------------------------------------------------------------------
    def remove(self, pg_id: PlacementGroupID) -> None:
        if pg_id not in self.manager.groups:
            raise ValueError(f"there is no placement group {pg_id.hex()}")
        for node_id in self.manager.remove(pg_id):
            self._release(node_id, pg_id, None)
        self._save(pg_id)
        self._removed(pg_id)
        self._publish("placement_groups", bytes(pg_id), self.manager.info(pg_id))
        self._settle(pg_id, False)

    def job_finished(self, job_id: JobID) -> None:
        for pg_id in self.manager.job_finished(job_id):
            self.remove(pg_id)

    def node_died(self, node_id: NodeID) -> None:
        self._pending_releases.pop(node_id, None)  # its bundles went with it
        for pg_id in self.manager.node_died(node_id):
            self._save(pg_id)
            logger.warning(
                "placement group %s lost bundles with node %s; placing them again",
                pg_id.hex(),
                node_id.hex()[:8],
            )
        self.retry()

    def retry(self) -> None:
        """Try every waiting group again (the cluster changed, or a second passed)."""
        for pg_id in self.manager.waiting():
            self._try(pg_id)

    # -- reservation ------------------------------------------------------------------------------
    def _try(self, pg_id: PlacementGroupID) -> None:
        decision = self.manager.schedule(pg_id, self._nodes())
        if isinstance(decision, Reserve):
            self._save(pg_id)  # where it is being reserved: a restarted gcs releases that
            spawn(self._reserve(decision), "reserving a placement group")
        elif isinstance(decision, BundlesWait) and decision.infeasible:
            record = self.manager.groups[pg_id]
            if not record.warned:
                record.warned = True
                logger.warning("placement group %s cannot be placed: %s", pg_id.hex(), decision.reason)

    async def _reserve(self, action: Reserve) -> None:
        prepared: list[NodeID] = []

        async def prepare(node_id: NodeID, bundles: list[list[object]]) -> bool:
            conn = self._node_conn(node_id)
            if conn is None:
                return False
            try:
                ok = bool(await conn.call(m.PrepareBundles(action.pg_id, bundles, action.attempt)))
            except Exception as e:
                logger.info(
                    "preparing bundles of %s on %s failed: %s", action.pg_id.hex(), node_id.hex()[:8], e
                )
                return False
            if ok:
                prepared.append(node_id)
            return ok

        answers = await asyncio.gather(*(prepare(n, b) for n, b in action.per_node.items()))
        ok = all(answers)
        outcome = self.manager.reserved(action.pg_id, action.attempt, ok)
        self._save(action.pg_id)
        if outcome == COMMIT:
            for node_id, bundles in action.per_node.items():
                conn = self._node_conn(node_id)
                if conn is not None:
                    indices = [int(b[0]) for b in bundles]  # type: ignore[call-overload]
                    conn.notify(m.CommitBundles(action.pg_id, indices, action.attempt))
            logger.info("placement group %s created", action.pg_id.hex())
            self._settle(action.pg_id, True)
            return
        # Refused somewhere, removed meanwhile, or superseded: give back what this attempt
        # reserved (and only that: a newer attempt may hold the same bundles by now).
        for node_id in prepared:
            indices = [int(b[0]) for b in action.per_node[node_id]]  # type: ignore[call-overload]
            self._release(node_id, action.pg_id, indices, action.attempt)

    def _release(
        self, node_id: NodeID, pg_id: PlacementGroupID, indices: list[int] | None, attempt: int | None = None
    ) -> None:
        msg = m.ReleaseBundles(pg_id, indices, attempt)
        conn = self._node_conn(node_id)
        if conn is not None and not conn.closed:
            conn.notify(msg)
        else:
            self._pending_releases.setdefault(node_id, []).append(msg)

    def node_registered(self, node_id: NodeID) -> None:
        conn = self._node_conn(node_id)
        for msg in self._pending_releases.pop(node_id, ()):
            if conn is not None:
                conn.notify(msg)
        if conn is not None:
            for pg_id, indices, attempt in self.manager.committed_on(node_id):
                conn.notify(m.CommitBundles(pg_id, indices, attempt))

    # -- durability -------------------------------------------------------------------------------
    def _save(self, pg_id: PlacementGroupID) -> None:
        record = self.manager.groups.get(pg_id)
        if record is not None:
            self._storage.put(_GROUPS, bytes(pg_id), encode_group(record))

    def restore(self) -> int:
        records = []
        for key in self._storage.keys(_GROUPS):
            blob = self._storage.get(_GROUPS, key)
            if blob is not None:
                records.append(decode_group(blob))
        for pg_id, holders, attempt in self.manager.restore(records):
            for node_id in holders:
                self._release(node_id, pg_id, None, attempt)
        return len(records)

    def _settle(self, pg_id: PlacementGroupID, created: bool) -> None:
        for fut in self._waiters.pop(pg_id, []):
            resolve(fut, created)


def _is_condition(condition: Any) -> bool:
    return (
        isinstance(condition, list)
        and len(condition) == 2
        and condition[0] in ("in", "not_in", "exists", "does_not_exist")
        and isinstance(condition[1], list)
    )
