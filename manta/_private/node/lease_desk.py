"""Lease requests at a node daemon, from arrival to answer.

A request is placed first (``ClusterView``): granted here (handed to the scheduler, which
answers when a worker is free), spilled back to a node that fits better, refused (a hard
constraint that can never hold), or *parked* when no live node can ever fit it, until the
cluster changes. The desk keeps each waiting request's reply future and requester, and
moves waiting requests elsewhere when other nodes free up (``rebalance``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from manta._private.common.ids import JobID
from manta._private.common.placement import Chosen, Infeasible, NodeEntry, Unschedulable, hard_labels
from manta._private.common.resources import from_unit_map, split_group_resource
from manta._private.node.cluster_view import ClusterView
from manta._private.node.scheduler import Action, Demand, LeaseRequest, Scheduler
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection

_REMOVED_GROUPS_KEPT = 10_000


def _in_a_group(req: LeaseRequest) -> bool:
    return any(split_group_resource(name) is not None for name in req.units)


def _group_removed(pg_hex: str) -> m.LeaseRefused:
    return m.LeaseRefused(f"placement group {pg_hex} was removed", "TaskPlacementGroupRemoved")


class LeaseDesk:
    def __init__(
        self,
        scheduler: Scheduler,
        cluster: ClusterView,
        execute: Callable[[list[Action]], None],
        changed: Callable[[], None],
    ) -> None:
        self._scheduler = scheduler
        self._cluster = cluster
        self._execute = execute
        self._changed = changed  # pending demand changed: tell the gcs
        self._replies: dict[Hashable, asyncio.Future[Any]] = {}
        self._conns: dict[Hashable, Connection] = {}
        # Requests no live node can fit yet: placed when the cluster changes.
        self._parked: dict[Hashable, LeaseRequest] = {}
        self._rebalance_due: asyncio.TimerHandle | None = None
        # Placement groups removed (hex ids): work asking for their resources fails.
        self._removed_groups: set[str] = set()

    def request(
        self, conn: Connection, req: LeaseRequest, strategy: Any, placed: bool, locality: bool = False
    ) -> Any:
        """The answer to a RequestLease: a reply now, or a future the grant resolves.
        ``placed``: another node already chose this one (a spillback); ``locality``: the
        owner chose this one for the task's arguments."""
        if req.key in self._replies:
            raise ValueError(f"lease request {req.key[1]} is already pending: nonces must be unique")  # type: ignore[index]
        removed = self._removed_group_of(req)
        if removed:
            return _group_removed(removed)
        self._cluster.expire(asyncio.get_running_loop().time())
        decision = self._cluster.place(from_unit_map(req.need), strategy, placed, self._free(), locality)
        if isinstance(decision, Unschedulable):
            return m.LeaseRefused(decision.reason)
        if isinstance(decision, Chosen) and decision.node is not self._cluster.local:
            return self._spill(decision.node, req)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[req.key] = fut
        self._conns[req.key] = conn
        if isinstance(decision, Infeasible):
            self._park(req, decision.reason)
        else:
            self._execute(self._scheduler.request(req))
            if req.key in self._scheduler.pending:
                self.schedule_rebalance()  # it waits: another node may take it sooner
        return fut

    def _spill(self, node: NodeEntry, req: LeaseRequest) -> m.LeaseSpillback:
        self._cluster.reserve(node, from_unit_map(req.need), asyncio.get_running_loop().time())
        return m.LeaseSpillback(node.node_id, node.address)

    def take(self, key: Hashable) -> asyncio.Future[Any] | None:
        """The reply future of a request being answered (granted, rejected)."""
        self._conns.pop(key, None)
        return self._replies.pop(key, None)

    def reply(self, key: Hashable, reply: Any) -> None:
        fut = self.take(key)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def requester(self, key: Hashable) -> Connection | None:
        return self._conns.get(key)

    def cancel(self, key: Hashable) -> None:
        if self._parked.pop(key, None) is not None:
            self.reply(key, m.LeaseCancelled("cancelled by the requester"))
            self._changed()  # no longer infeasible demand
        self._execute(self._scheduler.cancel(key))

    def job_finished(self, job_id: JobID, spare_client: Hashable) -> None:
        """The job's requests waiting for room fail, but ``spare_client``'s (the gcs's: a
        detached actor outlives its job, and the gcs ends the others itself)."""
        for key in [k for k, r in self._parked.items() if r.job_id == job_id and r.client != spare_client]:
            del self._parked[key]
            self.reply(key, m.LeaseCancelled("the job finished"))

    def group_removed(self, pg_hex: str) -> None:
        """A placement group was removed: requests waiting for its resources fail."""
        if len(self._removed_groups) >= _REMOVED_GROUPS_KEPT:
            self._removed_groups.clear()  # old ones: their requesters asked long ago
        self._removed_groups.add(pg_hex)
        waiting = [
            r
            for r in (*self._parked.values(), *self._scheduler.pending.values())
            if self._removed_group_of(r)
        ]
        for req in waiting:
            self._parked.pop(req.key, None)
            self._scheduler.withdraw(req.key)
            self.reply(req.key, _group_removed(pg_hex))
        if waiting:
            self._changed()

    def _removed_group_of(self, req: LeaseRequest) -> str | None:
        if not self._removed_groups:
            return None
        for name in req.units:
            parts = split_group_resource(name)
            if parts is not None and parts[2] in self._removed_groups:
                return parts[2]
        return None

    def requester_gone(self, conn: Connection, client: Hashable) -> None:
        """Nobody will read the answers to ``conn``'s requests: drop them (the scheduler
        drops its part through ``client_gone`` or ``cancel``)."""
        for key in [k for k, r in self._parked.items() if r.client == client]:
            del self._parked[key]
        for key in [k for k, c in self._conns.items() if c is conn]:
            self._execute(self._scheduler.cancel(key))
            fut = self.take(key)
            if fut is not None:
                fut.cancel()  # ends the handler waiting on it

    def infeasible_shapes(self) -> list[Demand]:
        # Work waiting for a placement group's bundles is not demand the cluster lacks.
        return [
            (from_unit_map(r.units), hard_labels(r.strategy))
            for r in self._parked.values()
            if not _in_a_group(r)
        ]

    def _free(self) -> dict[str, float]:
        return self._scheduler.resources.available_amounts()

    def _park(self, req: LeaseRequest, reason: str) -> None:
        self._parked[req.key] = req
        conn = self._conns.get(req.key)
        # Work for a placement group waits for its bundles to be committed (or the group to
        # be removed): that is not the cluster lacking resources, so no warning.
        if conn is not None and not _in_a_group(req):
            requested = from_unit_map(req.units)
            conn.notify(
                m.LeaseInfeasible(
                    req.key[1],  # type: ignore[index]
                    requested,
                    f"A task or actor needs {requested}, which no node in the cluster can provide "
                    f"({reason}). It stays pending until a node that fits joins the cluster; "
                    "`manta status` lists it as infeasible.",
                )
            )
        self._changed()

    def schedule_rebalance(self, delay: float = 0.05) -> None:
        """Look again soon (updates come in bursts: one look serves them all)."""
        if self._parked or self._scheduler.pending:
            if self._rebalance_due is not None and delay == 0:
                self._rebalance_due.cancel()
                self._rebalance_due = None
            if self._rebalance_due is None:
                self._rebalance_due = asyncio.get_running_loop().call_later(delay, self._rebalance)

    def close(self) -> None:
        if self._rebalance_due is not None:
            self._rebalance_due.cancel()

    def _rebalance(self) -> None:
        """The cluster changed: place parked requests, and send waiting ones that cannot
        run here now to a node that can take them now."""
        self._rebalance_due = None
        self._cluster.expire(asyncio.get_running_loop().time())
        free = self._free()
        for key, req in list(self._parked.items()):
            decision = self._cluster.place(from_unit_map(req.need), req.strategy, False, free)
            if isinstance(decision, Chosen):
                del self._parked[key]
                if decision.node is self._cluster.local:
                    self._execute(self._scheduler.request(req))
                else:
                    self.reply(key, self._spill(decision.node, req))
            elif isinstance(decision, Unschedulable):
                del self._parked[key]
                self.reply(key, m.LeaseRefused(decision.reason))
        for req in list(self._scheduler.pending.values()):
            if self._scheduler.resources.fits(req.need):
                continue
            node = self._cluster.better_elsewhere(from_unit_map(req.need), req.strategy, free)
            if node is not None and self._scheduler.withdraw(req.key) is not None:
                self.reply(req.key, self._spill(node, req))
        self._changed()
