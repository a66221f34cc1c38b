"""Progress of a running dataset, one line per operator (rows, blocks, rows/s).

In a terminal it is a live ``rich`` display on stderr; elsewhere (CI, logs, notebooks'
captured output) it is a log line per operator every ``LOG_EVERY_S`` seconds and at the
end, so logs stay readable. ``DataContext.enable_progress_bars = False`` turns it off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

from manta.data._internal.stats import OperatorStats
from manta.data.context import DataContext

logger = logging.getLogger("manta.data")
LOG_EVERY_S = 10.0
_REFRESH_S = 0.25


class _HasStats(Protocol):
    stats: OperatorStats

    def running(self) -> int: ...


def line(stats: OperatorStats, running: int, now: float) -> str:
    elapsed = now - stats.started_at if stats.started_at is not None else 0.0
    rate = f", {stats.rows_out / elapsed:,.0f} rows/s" if elapsed > 0 and stats.rows_out else ""
    return (
        f"{stats.name}: {stats.rows_out:,} rows, {stats.blocks_out} blocks, {stats.tasks_done} tasks done, "
        f"{running} running{rate}"
    )


class Reporter:
    def __init__(self, label: str, ops: Sequence[_HasStats], context: DataContext) -> None:
        self._label = label
        self._ops = ops
        self._enabled = context.enable_progress_bars
        self._live: Any = None
        self._last = time.monotonic()
        if self._enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
            self._live.start()

    def _text(self) -> str:
        now = time.monotonic()
        return "\n".join([f"Running {self._label}", *(line(op.stats, op.running(), now) for op in self._ops)])

    def update(self) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._live is not None and now - self._last >= _REFRESH_S:
            self._live.update(self._text())
            self._last = now
        elif self._live is None and now - self._last >= LOG_EVERY_S:
            logger.info(self._text())
            self._last = now

    def close(self, completed: bool) -> None:
        if self._live is not None:
            self._live.stop()
        if self._enabled and completed and self._live is None:
            logger.debug(self._text())
