"""The head's audit log: append-only JSON lines of who did what, rotated by size.

Each event has a sequence number (continued across gcs restarts from the file), a wall
time, an event name and fields (who: token name, role, peer; what: job, actor, key...).
Readers ask for events after a sequence number: recent ones come from memory, older ones
from the files. Failed authentications are bounded like log lines (a flood writes a
summary, not a line per connection).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from typing import Any

from manta._private.common.clock import Clock
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.common.session import AUDIT_FILE

logger = logging.getLogger(__name__)

MAX_BYTES = 16 << 20
BACKUPS = 4
# Recent events kept in memory for followers (``manta audit --follow`` polls).
RECENT = 10_000


class AuditLog:
    def __init__(
        self, directory: str, clock: Clock, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
    ) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._path = os.path.join(directory, AUDIT_FILE)
        self._clock = clock
        self._max_bytes = max_bytes
        self._backups = backups
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self._refusals = RateLimitedLog(time.monotonic)
        self._seq = self._last_seq()
        self._file = self._open()

    def _files(self) -> list[str]:
        """Oldest first."""
        backups = [f"{self._path}.{i}" for i in range(self._backups, 0, -1)]
        return [p for p in (*backups, self._path) if os.path.exists(p)]

    def _last_seq(self) -> int:
        for path in reversed(self._files()):
            last = 0
            for event in _read_events(path):
                last = max(last, int(event.get("seq", 0)))
            if last:
                return last
        return 0

    def _open(self) -> Any:
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self._backups - 1, 0, -1):
            if os.path.exists(f"{self._path}.{i}"):
                os.replace(f"{self._path}.{i}", f"{self._path}.{i + 1}")
        os.replace(self._path, f"{self._path}.1")
        self._file = self._open()

    def record(self, event: str, /, **fields: Any) -> None:
        self._seq += 1
        entry = {"seq": self._seq, "time": round(self._clock.time(), 3), "event": event}
        # A field may not pass for the log's own (a forged sequence number or time).
        entry.update((k, v) for k, v in fields.items() if k not in entry)
        line = json.dumps(entry, default=str, separators=(",", ":")) + "\n"
        try:
            if self._file.tell() + len(line) > self._max_bytes:
                self._rotate()
            self._file.write(line)
            self._file.flush()
        except OSError as e:  # a full disk must not take the gcs down with it
            logger.error("could not write the audit log %s: %s", self._path, e)
        self._recent.append(entry)

    def refused(self, peer: str, reason: str) -> None:
        """A failed authentication: recorded at most 20 times a minute, then summarised."""
        for text in self._refusals.lines(reason):
            if text == reason:
                self.record("auth_failed", peer=peer, reason=reason)
            else:
                self.record("auth_failed_suppressed", summary=text)

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` events with ``seq > after``, oldest first."""
        if self._recent and self._recent[0]["seq"] <= after + 1:
            return [e for e in self._recent if e["seq"] > after][:limit]
        out: list[dict[str, Any]] = []
        for path in self._files():
            for event in _read_events(path):
                if int(event.get("seq", 0)) > after:
                    out.append(event)
                    if len(out) >= limit:
                        return out
        return out

    def close(self) -> None:
        self._file.close()


def _read_events(path: str) -> list[dict[str, Any]]:
    events = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:  # a line cut short by a crash
                    continue
    except OSError:
        return []
    return events
