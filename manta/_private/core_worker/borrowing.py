"""Borrowing: refs that reach other processes inside values (ARCHITECTURE.md section 2).

A process that loads a ref registers with the object's owner before it lets go of the
value that carried it (``register_loaded``); a worker returning refs registers the task's
owner in the same way before it replies (``lend``). Owners record borrowers, forget those
that say they are done (``RemoveBorrower``, with how many registrations it retires) and
those that die (published by the gcs). Refs pickled outside Manta are held by the pickling
process until a Manta process loads them (``hold_out_of_band`` / ``adopt_out_of_band``).
Waiting on an owner is bounded: one that does not answer must not hang the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.ids import NodeID, ObjectID, WorkerID
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, ConnectionLost, RemoteError
from manta.exceptions import OufOfBandObjectRefSerializationException

logger = logging.getLogger(__name__)

# How long registering as a borrower may take before the ref is used unregistered.
REGISTER_TIMEOUT_S = 30.0


class Borrowing:
    def __init__(
        self,
        peers: Peers,
        references: ReferenceCounter,
        out_of_band_allowed: bool,
        call_site: Callable[[ObjectID], str | None],
    ) -> None:
        self._cw = peers
        self.references = references
        self._out_of_band_allowed = out_of_band_allowed
        self._call_site = call_site  # where an owned ref was made, when recorded
        self._watching_deaths = False
        self._deaths_watched: asyncio.Future[None] | None = None

    def lend(self, refs: list[ObjectRef], borrower: m.Address) -> list[m.NestedRef]:
        """Register ``borrower`` with the owner of each ref (this process included), so
        the objects outlive this process's own refs until the borrower takes them over."""
        nested: dict[ObjectID, m.NestedRef] = {}
        remote: dict[WorkerID, tuple[m.Address, list[ObjectID]]] = {}
        for ref in refs:
            owner = ref.owner_address()
            if owner is None or ref.id in nested:
                continue
            nested[ref.id] = m.NestedRef(ref.id, owner)
            if owner.worker_id == self._cw.worker_id:
                self.add_borrowers([ref.id], borrower)
            else:
                remote.setdefault(owner.worker_id, (owner, []))[1].append(ref.id)
        if remote:
            self.run_bounded(self._register(list(remote.values()), borrower), "lending refs")
        return list(nested.values())

    def register_loaded(self, refs: list[ObjectRef], timeout: float = REGISTER_TIMEOUT_S) -> None:
        """Refs were just loaded from a value: register this process as their borrower
        with each owner it has not registered with yet. Blocks (not on the I/O thread)
        for at most ``timeout``."""
        groups: dict[WorkerID, tuple[m.Address, list[ObjectID]]] = {}
        for ref in refs:
            owner = self.references.needs_registration(ref.id)
            if owner is not None:
                ids = groups.setdefault(owner.worker_id, (owner, []))[1]
                if ref.id not in ids:
                    ids.append(ref.id)
        if not groups:
            return
        try:
            self.run_bounded(
                self._register(list(groups.values()), self._cw.address), "borrowing refs", timeout
            )
        finally:
            self.references.mark_registered([i for _owner, ids in groups.values() for i in ids])

    def run_bounded(self, coro: Any, what: str, timeout: float = REGISTER_TIMEOUT_S) -> None:
        """Run ``coro`` on the I/O thread, waiting at most ``timeout``: an owner that does not
        answer (stopped, overloaded) must not hang the caller."""
        future = self._cw.io.submit(coro)
        wait = max(timeout, 0.5)
        try:
            future.result(wait)
        except TimeoutError:
            future.cancel()
            logger.warning("%s: an owner did not answer within %.1f s; going on without it", what, wait)

    async def _register(self, groups: list[tuple[m.Address, list[ObjectID]]], borrower: m.Address) -> None:
        async def one(owner: m.Address, ids: list[ObjectID]) -> None:
            try:
                conn = await self._cw.connect_worker(owner)
                await conn.call(m.AddBorrower(ids, borrower))
            except (ConnectionLost, OSError, RemoteError):
                pass  # the owner is gone: using the ref reports OwnerDiedError

        await asyncio.gather(*(one(owner, ids) for owner, ids in groups))

    def hold_out_of_band(self, ref: ObjectRef) -> None:
        """``ref`` is being pickled outside Manta: hold its object until a process loads it."""
        if not self._out_of_band_allowed:
            raise OufOfBandObjectRefSerializationException(
                f"The ObjectRef {ref.hex()} was pickled outside Manta (plain pickle or "
                "cloudpickle), which MANTA_ALLOW_OUT_OF_BAND_OBJECT_REF_SERIALIZATION=0 forbids. "
                "Pass refs inside task arguments, return values or put() values instead; if you "
                "need it, allow it again: the object is then kept until the pickle is loaded."
                + (f" The ref was created at {where}." if (where := self._call_site(ref.id)) else "")
            )
        self.references.add_out_of_band(ref.id, ref.owner_address())

    def adopt_out_of_band(self, ref: ObjectRef, holder: m.Address) -> None:
        """An out-of-band pickle of ``ref`` was loaded here: borrow it, then release the
        hold its pickling process kept for it."""
        if self._cw.io.in_loop_thread():
            return  # cannot wait here; the hold stays (until the holder exits)
        self.register_loaded([ref])
        if holder.worker_id == self._cw.worker_id:
            self.references.consume_out_of_band([ref.id])
        else:
            self._cw.io.call_soon(self.start_notify, holder, m.ReleaseOutOfBand([ref.id]))

    def add_borrowers(self, object_ids: list[ObjectID], borrower: m.Address) -> list[ObjectID]:
        """Record ``borrower`` for owned objects; returns the ids this process no longer has."""
        missing = [
            i for i in object_ids if not self.references.add_borrower(i, borrower.worker_id, borrower.node_id)
        ]
        if not self._watching_deaths:
            self._watching_deaths = True
            self._cw.io.call_soon(self.watch_deaths)  # a dead borrower must be heard of
        return missing

    def watch_deaths(self) -> asyncio.Future[None]:
        """Hear of dead workers and nodes from now on (an owner's borrowers die with them);
        done once subscribed (I/O thread)."""

        async def subscribe() -> None:
            await self._cw.subscribe_gcs("worker_died", b"")
            await self._cw.subscribe_gcs("nodes", b"")

        if self._deaths_watched is None:
            self._deaths_watched = asyncio.ensure_future(subscribe())
        return self._deaths_watched

    async def handle_add_borrower(self, _conn: Connection, msg: m.AddBorrower) -> list[ObjectID]:
        missing = self.add_borrowers(msg.object_ids, msg.borrower)
        # Answer once subscribed, so the borrower's death cannot go unheard.
        try:
            await asyncio.shield(self.watch_deaths())
        except Exception as e:
            logger.warning("cannot watch for dead borrowers: %s", e)
        return missing

    def handle_remove_borrower(self, _conn: Connection, msg: m.RemoveBorrower) -> None:
        for object_id, registrations in zip(msg.object_ids, msg.registrations, strict=False):
            self.references.remove_borrower(object_id, msg.borrower, registrations)

    def worker_gone(self, worker_id: WorkerID) -> None:
        self.references.borrowers_gone(worker_id=worker_id)

    def node_gone(self, node_id: NodeID) -> None:
        self.references.borrowers_gone(node_id=node_id)

    def start_notify(self, peer: m.Address, msg: Any) -> None:
        spawn(self._notify(peer, msg), f"sending {type(msg).__name__}")

    async def _notify(self, peer: m.Address, msg: Any) -> None:
        try:
            conn = await self._cw.connect_worker(peer)
            conn.notify(msg)
        except (ConnectionLost, OSError):
            pass  # the peer is gone, and what it held with it
