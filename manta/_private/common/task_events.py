"""Task events: the state changes each process records about the tasks it submits and
runs, and their form on the way to the gcs's task-event store.

An owner defines a task when it submits it and records where it waits (arguments, a
lease) and when it is sent to a worker; the worker records when it starts and how it
ended; the owner records the ends it makes itself (cancelled, its worker died, an
argument failed). A batch carries its reporter ([node_id, worker_id, pid]: where the
RUNNING events in it happened) and two msgpack-packed lists of plain lists, unpacked by
the store in one call (a batch holds thousands of events); the store checks each event
as it files it.

    definition: [task_id, attempt, state, time, name, func_or_class_name, type, job_id,
                 parent_task_id, actor_id | None, required_resources,
                 placement_group_id | None, [ids of its ObjectRef arguments]]
    transition: [task_id, attempt, state, time]
                [task_id, attempt, FAILED, time, error_type, error_message]

Times are seconds since the epoch, from the recording process's clock.
"""

from __future__ import annotations

# Ray's task states, in the order a task attempt moves through them; codes are indexes.
# Events come from several processes, in any order: an attempt's state is the one it
# ended in (a failure outranking success: a worker may finish what its owner then fails,
# a reply with the wrong results), else the latest reported (by its time: a task sent
# back unrun by a busy worker waits for a worker again).
STATES = (
    "NIL",
    "PENDING_ARGS_AVAIL",
    "PENDING_NODE_ASSIGNMENT",
    "SUBMITTED_TO_WORKER",
    "RUNNING",
    "FINISHED",
    "FAILED",
)
NIL, PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING, FINISHED, FAILED = range(7)

# Ray's task types. Codes are indexes.
TYPES = ("NORMAL_TASK", "ACTOR_TASK", "ACTOR_CREATION_TASK", "DRIVER_TASK")
NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK, DRIVER_TASK = range(4)

# A listing's columns (Ray's TaskState): those shown without ``detail``, then the rest.
COLUMNS = (
    "task_id",
    "attempt_number",
    "name",
    "state",
    "job_id",
    "actor_id",
    "type",
    "func_or_class_name",
    "parent_task_id",
    "node_id",
    "worker_id",
    "worker_pid",
    "error_type",
)
DETAIL_COLUMNS = (
    "language",
    "required_resources",
    "runtime_env_info",
    "placement_group_id",
    "events",
    "profiling_data",
    "creation_time_ms",
    "start_time_ms",
    "end_time_ms",
    "task_log_info",
    "error_message",
    "is_debugger_paused",
    "call_site",
    "label_selector",
)
# The columns filters may name, and how they compare (as Ray's).
FILTER_COLUMNS = (*COLUMNS, "language", "is_debugger_paused", "placement_group_id")
FILTER_OPS = ("=", "!=")
# A listing returns at most this many records, whatever ``limit`` asks (Ray's cap too).
MAX_LIMIT = 10_000

# An error message is cut to this many characters on the wire (the full one reaches the
# caller with the error itself).
MAX_ERROR_MESSAGE = 2000


# How an event's state ranks, by state code: of two events of an attempt, the one of the
# higher rank says its state (a failure outranks success, which outranks the rest), and
# of equal ranks the later one.
RANK = (0, 0, 0, 0, 0, 1, 2)


def check_filter(key: object, op: object) -> None:
    """Raises ValueError, naming what is valid, for a filter tasks cannot be listed by."""
    if key not in FILTER_COLUMNS:
        raise ValueError(
            f"Cannot filter tasks by {key!r}: the filterable columns are {', '.join(FILTER_COLUMNS)}"
        )
    if op not in FILTER_OPS:
        raise ValueError(f"Unsupported filter operator {op!r}: use one of {', '.join(FILTER_OPS)}")
