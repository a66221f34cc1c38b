"""A process's user metrics (``manta.util.metrics``) on their way to its node daemon.

Recording only updates the process's table (``common/user_metrics.py``). Every report
interval the I/O thread sends what changed, in one ``ReportMetrics``, to the node daemon,
which exports it; once more as the process leaves. A process that records nothing sends
nothing, and the task path never waits for any of this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from manta._private.common.user_metrics import ProcessMetrics, process_metrics
from manta._private.rpc.messages import ReportMetrics
from manta._private.rpc.transport import Connection


def report_metrics_every(
    node: Callable[[], Connection | None],
    interval: float,
    stopped: Callable[[], bool],
    table: ProcessMetrics | None = None,
    call_later: Callable[[float, Callable[[], None]], Any] | None = None,
) -> None:
    """On the I/O loop: report every ``interval`` until ``stopped`` (a timer, so that
    nothing is left pending when the loop closes; ``call_later``: the loop's, unless a
    test drives the timer itself)."""
    later = call_later or asyncio.get_running_loop().call_later
    metrics = table or process_metrics()

    def tick() -> None:
        if stopped():
            return
        report_metrics(node, metrics)
        later(interval, tick)

    later(interval, tick)


def report_metrics(node: Callable[[], Connection | None], table: ProcessMetrics | None = None) -> None:
    """On the I/O loop: send what changed since the last report. Kept for the next report
    if the node connection is down (a driver's, briefly, say)."""
    metrics = table or process_metrics()
    if not metrics.has_changes():
        return
    conn = node()
    if conn is None or conn.closed:
        return
    taken = metrics.take()
    if taken is not None:
        conn.notify(ReportMetrics(*taken))
