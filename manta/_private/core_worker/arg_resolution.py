"""Counting a task's ref arguments down as their values arrive, without I/O.

A task (or an actor's constructor) may only be sent once every top-level ``ObjectRef``
argument has a value here: inline bytes, or the node whose store holds it. The values
arrive one callback at a time, in any order and possibly on another thread (the shells
hop to the I/O thread first); ``ArgResolution`` keeps the count and the values, and says
which argument, if any, holds an error, so that a task is failed with it unrun.
"""

from __future__ import annotations

from typing import cast

from manta._private.common.ids import ObjectID
from manta._private.core_worker.memory_store import StoredObject
from manta._private.core_worker.object_manager import ObjectManager
from manta._private.rpc.messages import ArgValue


class ArgResolution:
    """The values of ``count`` ref arguments, filled in by ``ready`` in any order."""

    __slots__ = ("_left", "values")

    def __init__(self, count: int) -> None:
        # Shared with the task (``PendingTask.resolved``) by the shells, which read it
        # while it fills: a None is an argument not here yet.
        self.values: list[ArgValue | None] = [None] * count
        self._left = count

    def ready(self, index: int, object_id: ObjectID, obj: StoredObject) -> bool:
        """Argument ``index`` is here as ``obj``. True once every argument is."""
        self.values[index] = ArgValue(object_id, obj.inline, obj.node_id, obj.size)
        self._left -= 1
        return self._left == 0

    @property
    def args(self) -> list[ArgValue]:
        """The values, once ``ready`` has returned True."""
        return cast("list[ArgValue]", self.values)

    def failed_arg(self) -> bytes | None:
        """The error blob of the first argument that holds an error (its task fails with
        it, unrun), or None."""
        for arg in self.values:
            if arg is not None and arg.inline is not None and ObjectManager.is_error_blob(arg.inline):
                return arg.inline
        return None
