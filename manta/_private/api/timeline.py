"""``manta.timeline()``: the tasks that ran, as a Chrome trace (open it in Perfetto or
chrome://tracing): one process row per node, one thread row per worker process, one slice
per task attempt from the moment it started running to its end."""

from __future__ import annotations

import json
import time
from typing import Any

from manta._private.api.context import require_initialized
from manta._private.rpc import messages as m


def timeline(filename: str | None = None) -> list[dict[str, Any]] | None:
    """The trace events of every task attempt the cluster's task-event store holds; written
    to ``filename`` as JSON if given (then None is returned), else returned."""
    worker = require_initialized("writing a timeline")
    rows: list[list[Any]] = worker.call_gcs(m.TaskTimeline(), 60)
    events = trace_events(rows, now=time.time())
    if filename is None:
        return events
    with open(filename, "w") as f:
        json.dump(events, f)
    return None


def trace_events(rows: list[list[Any]], now: float) -> list[dict[str, Any]]:
    """Chrome trace "complete" events (``ph: X``, microseconds) for timeline rows; an
    attempt still running ends at ``now``."""
    events = []
    for task_id, attempt, name, func, kind, state, node_id, pid, start, end in rows:
        running = end is None
        events.append(
            {
                "cat": kind,
                "name": name or func,
                "pid": f"node {node_id[:12]}" if node_id else "node ?",
                "tid": f"worker pid={pid}" if pid else "worker ?",
                "ph": "X",
                "ts": start * 1e6,
                "dur": max((now if running else end) - start, 0.0) * 1e6,
                # Failed slices red, still running ones grey, as Ray's timeline shows them.
                "cname": "terrible" if state == "FAILED" else "grey" if running else "generic_work",
                "args": {
                    "task_id": task_id,
                    "attempt_number": attempt,
                    "func_or_class_name": func,
                    "state": state,
                },
            }
        )
    return events
