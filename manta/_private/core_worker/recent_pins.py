"""Store objects this process read lately, kept mapped (and so pinned) a moment longer.

Reading a store object costs a round trip to the node daemon to pin it, and a mapping;
both go when the last value made from the mapping dies. A process that reads the same
object again and again (a loop of ``get``, tasks on one worker taking the same large
argument) would pay that every time. Keeping the last few mappings for ``keep_s`` after
their last use makes the repeats cost a lookup; holding the pins a moment longer only
delays the store spilling those objects, and the store waits for space far longer than
that; what is kept is bounded in count and in bytes (a small share of the store), so a
pass over objects larger than the store never finds its space held. As the plasma
client's release delay did, by time and bytes here rather than by count alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from manta._private.common.ids import ObjectID


class RecentPins:
    """Any thread. Holds mappings (opaque here); dropping one lets its unpin run."""

    def __init__(self, keep_s: float, max_entries: int, max_bytes: int, clock: Callable[[], float]) -> None:
        self._keep_s = keep_s
        self._max = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        # Least recently used first: object id -> (mapping, its size, time of its last use).
        self._entries: OrderedDict[ObjectID, tuple[Any, int, float]] = OrderedDict()
        self._bytes = 0
        # Whether the caller has an expiry on its way (from ``add`` until ``expire`` finds
        # nothing left): one timer at a time, however often the cache empties and refills.
        self._armed = False

    def get(self, object_id: ObjectID) -> Any | None:
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None:
                return None
            self._entries[object_id] = (entry[0], entry[1], self._clock())
            self._entries.move_to_end(object_id)
            return entry[0]

    def add(self, object_id: ObjectID, mapping: Any, size: int) -> bool:
        """Keep ``mapping`` (of ``size`` bytes) unless it alone is over the byte budget;
        True when the caller must arm an expiry (none is on its way)."""
        if size > self._max_bytes:
            return False
        dropped = []
        with self._lock:
            arm, self._armed = not self._armed, True
            old = self._entries.pop(object_id, None)
            self._bytes += size - (old[1] if old else 0)
            self._entries[object_id] = (mapping, size, self._clock())
            while len(self._entries) > self._max or self._bytes > self._max_bytes:
                dropped.append(self._pop_oldest())
        del dropped  # outside the lock: a dropped mapping's unpin runs now
        return arm

    def _pop_oldest(self) -> Any:
        _object_id, entry = self._entries.popitem(last=False)
        self._bytes -= entry[1]
        return entry

    def drop(self, object_ids: Iterable[ObjectID]) -> None:
        """Forget freed objects at once."""
        dropped = []
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.pop(object_id, None)
                if entry is not None:
                    self._bytes -= entry[1]
                    dropped.append(entry)
        del dropped

    def expire(self) -> float | None:
        """Drop what has been unused for ``keep_s``; seconds until the next one is due, or
        None once nothing is kept."""
        dropped = []
        with self._lock:
            now = self._clock()
            while self._entries:
                used = next(iter(self._entries.values()))[2]
                if now - used < self._keep_s:
                    return used + self._keep_s - now
                dropped.append(self._pop_oldest())
            self._armed = False
        del dropped
        return None

    def clear(self) -> None:
        with self._lock:
            dropped = list(self._entries.values())
            self._entries.clear()
            self._bytes = 0
        del dropped

    def __len__(self) -> int:
        return len(self._entries)
