"""Lost objects: when a node's store no longer has an object that is still in use.

The process that finds it missing forgets the stale location and has the owner make the
object again (``reconstruct``: re-run its task from lineage, or record why it cannot). Owners check a borrower's report against their store first, since it may be
about a copy that has been made again since.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from manta._private.common.ids import NodeID, ObjectID
from manta._private.core_worker.borrowing import Borrowing
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.task_manager import PendingTask, Retry, TaskManager
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, ConnectionLost, RemoteError

logger = logging.getLogger(__name__)


class LossRecovery:
    def __init__(
        self,
        peers: Peers,
        memory_store: MemoryStore,
        references: ReferenceCounter,
        borrowing: Borrowing,
        task_manager: TaskManager,
        error_object: Callable[[BaseException], StoredObject],
        resubmit: Callable[[PendingTask], None],
    ) -> None:
        self._cw = peers
        self.memory_store = memory_store
        self.references = references
        self._borrowing = borrowing
        self._task_manager = task_manager
        self._error_object = error_object  # the stored value that raises ``error`` at get
        self._resubmit = resubmit  # a task to run again (from the I/O thread)

    def recover(self, ref: ObjectRef, stale: StoredObject | None) -> None:
        """The store no longer has ``ref``'s object, which is in use: have its owner make
        it again (or record why it cannot), and forget the stale location here."""
        oid = ref.id
        if stale is not None and not self.memory_store.discard_if(oid, stale):
            return  # another thread saw the loss first; a new copy is on its way
        if self.references.is_owned(oid):
            self.reconstruct(oid, None if stale is None else stale.node_id)
        else:
            self._borrowing.run_bounded(self._report_lost(ref), "reporting a lost object to its owner")

    async def _report_lost(self, ref: ObjectRef) -> None:
        owner = ref.owner_address()
        if owner is None:
            return
        try:
            conn = await self._cw.connect_worker(owner)
            await conn.call(m.ObjectLost(ref.id))
        except (ConnectionLost, OSError, RemoteError):
            pass  # the owner is gone: the fetch that follows reports it

    async def recover_lost_args(self, refs: list[ObjectRef]) -> None:
        """A worker found these arguments missing from its store (I/O thread)."""
        for ref in refs:
            if self.references.is_owned(ref.id):
                await self.handle_object_lost(None, m.ObjectLost(ref.id))
                continue
            stale = self.memory_store.get(ref.id)
            if stale is not None and self.memory_store.discard_if(ref.id, stale):
                await self._report_lost(ref)

    async def handle_object_lost(self, _conn: Connection | None, msg: m.ObjectLost) -> None:
        """A borrower found our object missing from its store. The report may be about an
        older copy (made again since), so check the store before acting on it."""
        oid = msg.object_id
        stale = self.memory_store.get(oid)
        if stale is None or stale.node_id is None:
            return
        # Pinning it here (copying it over if it lives on another node) tells whether the
        # copy the borrower was told about is still to be had.
        source = None if stale.node_id == self._cw.node_id else stale.node_id
        try:
            location = await self._cw.node_conn.call(m.PinObject(oid, source))
        except Exception as e:  # e.g. no room to restore it: it is there, not lost
            logger.warning("cannot check whether object %s is lost: %s", oid.hex(), e)
            return
        if location is not None:
            self._cw.node_conn.notify(m.UnpinObjects([oid]))
            return
        if self.memory_store.discard_if(oid, stale):
            self.reconstruct(oid, stale.node_id)

    def reconstruct(self, object_id: ObjectID, lost_on: NodeID | None) -> None:
        """An owned object's only copy (on node ``lost_on``) is lost: run its task again,
        or store the reason it cannot be made again as its value."""
        outcome = self._task_manager.reconstruct(object_id)
        if outcome is None:
            return
        self.memory_store.delete([object_id])
        if isinstance(outcome, Retry):
            # Its siblings (the task's other results) kept on the same node are lost too:
            # the run rebuilds them as well (kept, each would have run it again, and spent
            # a retry, when read). Those elsewhere are still good.
            for sibling in outcome.task.return_ids:
                stored = self.memory_store.get(sibling)
                if (
                    sibling != object_id
                    and stored is not None
                    and lost_on is not None
                    and stored.node_id == lost_on
                ):
                    self.memory_store.discard_if(sibling, stored)
            self._rerun(object_id, outcome)
        else:
            self.memory_store.put(object_id, self._error_object(outcome))

    def _rerun(self, object_id: ObjectID, retry: Retry) -> None:
        for arg, error in retry.failed:
            self.memory_store.put(arg, self._error_object(error))
        for first in retry.before:  # freed arguments, made again before the task runs
            self._rerun(first.task.return_ids[0], first)
        logger.warning(
            "object %s was lost; running %s again to rebuild it", object_id.hex(), retry.task.spec.name
        )
        self._resubmit(retry.task)
