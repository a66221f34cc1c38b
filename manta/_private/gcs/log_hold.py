"""Worker output for a job whose driver is not listening yet.

After a gcs restart the nodes come back before the drivers do: what a node sends in
between has no subscriber, and a plain publish would lose it. The gcs keeps such
batches for a while, per job, and hands them to the job's next subscriber. Bounded by
age and by characters (per job and in all), dropping the oldest.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

_B = TypeVar("_B")

MAX_CHARS_PER_JOB = 1 << 20
MAX_CHARS = 16 << 20
_SWEEP_EVERY_S = 1.0


class LogHold(Generic[_B]):
    def __init__(
        self, max_age_s: float, max_chars_per_job: int = MAX_CHARS_PER_JOB, max_chars: int = MAX_CHARS
    ) -> None:
        self._max_age_s = max_age_s
        self._max_per_job = max_chars_per_job
        self._max = max_chars
        self._held: dict[bytes, deque[tuple[float, _B, int]]] = {}
        self._chars_of: dict[bytes, int] = {}
        self._chars = 0
        self._swept_at = float("-inf")

    def hold(self, job: bytes, batch: _B, chars: int, now: float) -> None:
        self._held.setdefault(job, deque()).append((now, batch, chars))
        self._chars_of[job] = self._chars_of.get(job, 0) + chars
        self._chars += chars
        while self._chars_of.get(job, 0) > self._max_per_job:  # one batch over the cap goes too
            self._drop_oldest(job)
        while self._chars > self._max:
            self._drop_oldest(min(self._held, key=lambda j: self._held[j][0][0]))
        if now - self._swept_at >= _SWEEP_EVERY_S:
            self._swept_at = now
            self._expire(now)

    def take(self, job: bytes, now: float) -> list[_B]:
        """The batches held for ``job`` that are not too old, oldest first; forgotten."""
        held = self._held.pop(job, deque())
        chars = self._chars_of.pop(job, 0)
        self._chars -= chars
        return [batch for at, batch, _ in held if now - at <= self._max_age_s]

    def forget(self, job: bytes) -> None:
        self.take(job, 0.0)

    @property
    def chars(self) -> int:
        return self._chars

    def _expire(self, now: float) -> None:
        for job in list(self._held):
            held = self._held[job]
            while job in self._held and now - held[0][0] > self._max_age_s:
                self._drop_oldest(job)

    def _drop_oldest(self, job: bytes) -> None:
        held = self._held[job]
        _, _, chars = held.popleft()
        self._chars_of[job] -= chars
        self._chars -= chars
        if not held:
            del self._held[job]
            del self._chars_of[job]
