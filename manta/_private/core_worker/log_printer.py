"""How a driver prints what its job's workers write: each line under a ``(name pid=N,
node=...)`` prefix (Ray's start, so tools that grep for it keep working), and a line that
several workers print alike collapsed into one with a count, as Ray does.

``LogDeduplicator`` decides (pure, with an injected clock); ``LogPrinter`` is the shell
that writes and keeps a timer for the counts due. Ray's rule, which users know from Ray's
output: two lines are alike when they are equal once every word with a digit in it is
dropped (pids, ids, timings and counters differ between workers). The first of a kind is
printed at once; more from the *same* process are printed too (a loop's output is not
collapsed); one from another process starts holding them back. When the window ends,
what was held back comes out as the latest line with ``[repeated Nx across cluster]``
(or as itself when it was one line), and the next window begins. ``MANTA_DEDUP_LOGS=0``
(or Ray's ``RAY_DEDUP_LOGS=0``) prints every line. Unlike Ray's, the count is printed
when its window ends even if no other output follows, and without colour codes.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m

# Patterns kept at most; past it, everything held back is printed and forgotten.
MAX_PATTERNS = 10_000
_HINT = (
    " (Manta collapses lines that several workers print alike; set MANTA_DEDUP_LOGS=0 "
    "or RAY_DEDUP_LOGS=0 to see every one.)"
)


def canonical(line: str) -> str:
    """What two alike lines share: the line without its words that hold a digit."""
    return " ".join(word for word in line.split() if not any(c.isdigit() for c in word))


def _with_lines(batch: m.LogBatch, lines: list[str]) -> m.LogBatch:
    return m.LogBatch(
        batch.job_id, batch.node_id, batch.host, batch.pid, batch.task_name, batch.is_err, lines
    )


@dataclass(slots=True)
class _Pattern:
    window_start: float
    held: int  # occurrences held back in this window
    latest: m.LogBatch  # the batch of the latest occurrence (its source's prefix)
    line: str
    sources: set[tuple[NodeID, int]]


class LogDeduplicator:
    def __init__(
        self, window_s: float, clock: Callable[[], float], allow_regex: str = "", skip_regex: str = ""
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._allow = re.compile(allow_regex) if allow_regex else None
        self._skip = re.compile(skip_regex) if skip_regex else None
        # In the order their windows began (a restarted window moves to the end).
        self._patterns: dict[tuple[bool, str], _Pattern] = {}
        self._hinted = False

    def add(self, batch: m.LogBatch) -> list[m.LogBatch]:
        """What to print now for ``batch``: its lines not held back, then the counts of
        windows that have ended."""
        now = self._clock()
        source = (batch.node_id, batch.pid)
        shown: list[str] = []
        for line in batch.lines:
            if self._allow is not None and self._allow.search(line):
                shown.append(line)
                continue
            if self._skip is not None and self._skip.search(line):
                continue
            key = (batch.is_err, canonical(line))
            if not key[1]:
                shown.append(line)  # nothing left to compare: never collapsed
                continue
            pattern = self._patterns.get(key)
            if pattern is None:
                self._patterns[key] = _Pattern(now, 0, batch, line, {source})
                shown.append(line)
                continue
            pattern.sources.add(source)
            if len(pattern.sources) == 1:
                shown.append(line)  # one process repeating itself
            else:
                pattern.held += 1
                pattern.latest, pattern.line = batch, line
        out = [_with_lines(batch, shown)] if shown else []
        if len(self._patterns) > MAX_PATTERNS:
            return out + self.flush()
        return out + self.expire()

    def expire(self) -> list[m.LogBatch]:
        """The counts of the windows that have ended; their patterns start a new window
        (one that held nothing back is forgotten)."""
        now = self._clock()
        out = []
        while self._patterns:
            key, pattern = next(iter(self._patterns.items()))
            if now - pattern.window_start < self.window_s:
                break
            del self._patterns[key]
            if pattern.held > 0:
                out.append(self._summary(pattern))
            if pattern.held > 1:
                pattern.window_start, pattern.held = now, 0
                self._patterns[key] = pattern
        return out

    def flush(self) -> list[m.LogBatch]:
        """Everything held back (the driver is leaving), and forget every pattern."""
        out = [self._summary(p) for p in self._patterns.values() if p.held > 0]
        self._patterns.clear()
        return out

    def next_expiry(self) -> float | None:
        """When the oldest window with lines held back ends (clock time), if any does."""
        held = [p.window_start for p in self._patterns.values() if p.held > 0]
        return min(held) + self.window_s if held else None

    def _summary(self, pattern: _Pattern) -> m.LogBatch:
        if pattern.held == 1:
            return _with_lines(pattern.latest, [pattern.line])
        text = f"{pattern.line} [repeated {pattern.held}x across cluster]"
        if not self._hinted:
            self._hinted = True
            text += _HINT
        return _with_lines(pattern.latest, [text])


class LogPrinter:
    """Prints log batches as they arrive from the gcs, on the core worker's event loop."""

    def __init__(
        self,
        config: Config,
        local_node: NodeID,
        clock: Callable[[], float],
        job_config: dict[str, Any] | None = None,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        """``job_config``: the settings of the driver's job; ``call_later(delay, fn)`` (the
        running loop's by default) schedules the end of a window, returning a handle with
        ``cancel()``."""
        self._local_node = local_node
        # A job with a logging_config: its structured (JSON) lines stay parseable without
        # the prefix, as in Ray.
        self._ignore_prefix = (job_config or {}).get("logging_config") is not None
        self._clock = clock
        self._dedup: LogDeduplicator | None = None
        if config.dedup_logs:  # its patterns are valid regexes: Config checked them
            self._dedup = LogDeduplicator(
                config.dedup_logs_agg_window_s,
                clock,
                config.dedup_logs_allow_regex,
                config.dedup_logs_skip_regex,
            )
        self._call_later = call_later
        self._timer: Any = None

    def show(self, batch: m.LogBatch) -> None:
        if self._dedup is None:
            self._write(batch)
            return
        for out in self._dedup.add(batch):
            self._write(out)
        self._arm()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dedup is not None:
            for out in self._dedup.flush():
                self._write(out)

    def _arm(self) -> None:
        assert self._dedup is not None
        due = self._dedup.next_expiry()
        if due is None or self._timer is not None:
            return
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._timer = call_later(max(0.0, due - self._clock()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        assert self._dedup is not None
        for out in self._dedup.expire():
            self._write(out)
        self._arm()

    def _write(self, batch: m.LogBatch) -> None:
        if self._ignore_prefix:
            prefix = ""
        else:
            where = f"pid={batch.pid}, node={batch.node_id.hex()[:8]}"
            if batch.node_id != self._local_node:
                where += f", ip={batch.host}"
            prefix = f"({batch.task_name} {where}) " if batch.task_name else f"({where}) "
        stream = sys.stderr if batch.is_err else sys.stdout
        try:
            stream.write("".join(prefix + line + "\n" for line in batch.lines))
            stream.flush()
        except (OSError, ValueError):
            pass
