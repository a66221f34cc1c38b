"""Timeline rows as Chrome trace events."""

from __future__ import annotations

from manta._private.api.timeline import trace_events

NODE = "ab" * 28


def test_rows_become_complete_events_in_microseconds() -> None:
    rows = [
        ["t1", 0, "f", "mod.f", "NORMAL_TASK", "FINISHED", NODE, 11, 10.0, 10.5],
        ["t2", 1, "", "A.m", "ACTOR_TASK", "FAILED", NODE, 12, 11.0, 11.25],
        ["t3", 0, "g", "g", "NORMAL_TASK", "RUNNING", None, None, 12.0, None],
    ]
    done, failed, running = trace_events(rows, now=13.0)
    assert done["ph"] == "X" and done["ts"] == 10_000_000 and done["dur"] == 500_000
    assert (done["pid"], done["tid"], done["name"], done["cat"]) == (
        f"node {NODE[:12]}",
        "worker pid=11",
        "f",
        "NORMAL_TASK",
    )
    assert done["args"] == {
        "task_id": "t1",
        "attempt_number": 0,
        "func_or_class_name": "mod.f",
        "state": "FINISHED",
    }
    assert failed["name"] == "A.m" and failed["cname"] == "terrible"  # no name: the method
    assert running["dur"] == 1_000_000 and running["cname"] == "grey"  # still running: up to now
    assert (running["pid"], running["tid"]) == ("node ?", "worker ?")
