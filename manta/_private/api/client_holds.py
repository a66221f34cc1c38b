"""What a remote driver holds, and what its session holds on its behalf (pure: no I/O).

Each ref or actor handle the session sends counts as one reference held in the session
(*owed* to the client). The client counts its own copies; when the last one goes it
releases all it was owed, and a copy made here with nothing owed (``ObjectRef(id)``)
asks the session to hold one. These holds and releases go to the session inside the
client's next call, in order with its calls.

Drops come from finalizers (``__del__``), which may run inside any allocation, the
collector's included, on any thread: they are only queued here (a deque append takes no
lock), and counted when the next call takes the operations.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

# What a key is: ("r", ObjectID) for a ref, ("a", ActorID) for an actor handle; a
# generator that is no longer read is ("g", TaskID) in the queue of drops.
Key = tuple[str, bytes]


class Holds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[Key, int] = {}  # copies in this process
        self._owed: dict[Key, int] = {}  # references the session holds for us
        self._ops: list[list[Any]] = []
        self._drops: deque[Key] = deque()

    def received(self, key: Key) -> None:
        """The session sent one (and holds it for us): before the copy here is made."""
        with self._lock:
            self._owed[key] = self._owed.get(key, 0) + 1

    def add(self, key: Key, owner: Any = None) -> None:
        with self._lock:
            self._local[key] = self._local.get(key, 0) + 1
            if not self._owed.get(key):  # made here, not sent: ask the session to hold it
                self._owed[key] = 1
                self._ops.append(["h" + key[0], bytes(key[1]), owner])

    def drop(self, key: Key) -> None:
        """A copy went (from a finalizer: queued, counted later)."""
        self._drops.append(key)

    def stop_reading(self, task_id: bytes) -> None:
        """A streaming generator here was dropped: the session may stop reading it for us."""
        self._drops.append(("g", task_id))

    def take_ops(self) -> list[list[Any]]:
        """The holds and releases since the last call, in order: what the next call carries."""
        with self._lock:
            while self._drops:
                self._count_drop(self._drops.popleft())
            ops, self._ops = self._ops, []
        return ops

    def _count_drop(self, key: Key) -> None:
        if key[0] == "g":
            self._ops.append(["g", bytes(key[1]), 0])
            return
        left = self._local.get(key, 0) - 1
        if left > 0:
            self._local[key] = left
            return
        self._local.pop(key, None)
        owed = self._owed.pop(key, 0)
        if owed:
            self._ops.append([key[0], bytes(key[1]), owed])
