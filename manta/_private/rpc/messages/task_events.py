"""Messages of the gcs's task-event store (tags 170-179): processes report the events of
their tasks; the state API lists and summarizes them. Event shapes: common/task_events.py.
"""

from __future__ import annotations

from typing import Any

from manta._private.rpc.codec import message


@message(170)
class TaskEventBatch:
    """What a process recorded since its last report (a one-way message)."""

    reporter: list[Any]  # [node_id, worker_id, pid]
    definitions: bytes  # msgpack-packed lists
    transitions: bytes
    dropped: int  # events it could not keep (its buffer was full) since its last report


@message(171)
class ListTasks:
    """Task attempts passing every ``[column, operator, value]`` filter, oldest first,
    from the ``offset``-th of them on (a page of a long listing)."""

    filters: list[Any]
    limit: int
    detail: bool
    offset: int = 0


@message(172)
class TaskListing:
    records: list[dict[str, Any]]
    total: int  # attempts in the store
    matched: int  # attempts that passed the filters, before the limit
    dropped: int  # events lost on the way (the oldest attempts evicted from the store are not)


@message(173)
class SummarizeTasks:
    """Task attempts counted by function and state: a dict (see TaskEventStore.summary)."""


@message(174)
class TaskTimeline:
    """Every task attempt that ran: a list of rows (see TaskEventStore.timeline)."""


@message(175)
class ExplainTask:
    """Why a task has not finished: lines of text (see gcs/task_why.py)."""

    task_id: bytes
