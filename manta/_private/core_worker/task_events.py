"""A process's task events on their way to the gcs (shapes: common/task_events.py).

Any thread records (the user's thread submits, the I/O thread settles, the executor runs):
an event is one list appended to a deque, and a full buffer drops and counts instead of
growing. The I/O thread takes what is there in one batch every report interval
(``report_periodically``), and once more as the process leaves, and sends it to its node
daemon, which forwards it to the gcs.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from manta._private.common import task_events as te
from manta._private.common.ids import TaskID
from manta._private.rpc.messages import ActorSpec, TaskEventBatch, TaskSpec
from manta._private.rpc.transport import Connection


class TaskEventBuffer:
    def __init__(self, max_buffered: int) -> None:
        # 0: nothing is recorded (local mode, which has no gcs to report to).
        self._max = max(max_buffered, 0)
        self._definitions: deque[list[Any]] = deque()
        self._transitions: deque[list[Any]] = deque()
        self._dropped = 0  # may miss a count when threads overflow it at once: a tally
        # This process, as [node_id, worker_id, pid]: where the RUNNING events it reports
        # happened (set once it has joined its node).
        self.reporter: list[Any] = [None, None, 0]

    def define(self, spec: TaskSpec, state: int, arg_ids: Sequence[bytes]) -> None:
        """``spec`` was submitted (with ``arg_ids``, its ref arguments); it waits in ``state``."""
        if self._full():
            return
        if spec.actor_id is None:
            kind, func = te.NORMAL_TASK, qualified_name(spec.function_name)
        else:
            kind, func = te.ACTOR_TASK, spec.function_name  # "Class.method" already
        pg = spec.placement_group
        self._definitions.append(
            [
                spec.task_id,
                spec.attempt,
                state,
                time.time(),
                spec.name,
                func,
                kind,
                spec.job_id,
                spec.parent_task_id,
                spec.actor_id,
                spec.resources,
                pg[0] if pg else None,
                arg_ids,
            ]
        )

    def define_actor_creation(self, spec: ActorSpec, args_pending: bool) -> None:
        """The actor ``spec`` was created: its creation task waits to be placed."""
        if self._full():
            return
        name = f"{spec.class_name}.__init__"
        pg = spec.placement_group
        self._definitions.append(
            [
                TaskID.for_actor_creation(spec.actor_id),
                0,
                te.PENDING_ARGS_AVAIL if args_pending else te.PENDING_NODE_ASSIGNMENT,
                time.time(),
                name,
                name,
                te.ACTOR_CREATION_TASK,
                spec.job_id,
                None,
                spec.actor_id,
                spec.placement or spec.resources,
                pg[0] if pg else None,
                [],
            ]
        )

    def transition(self, spec: TaskSpec, state: int, *extra: Any) -> None:
        """``spec``'s attempt moved to ``state`` (with FAILED's extras)."""
        if self._full():
            return
        self._transitions.append([spec.task_id, spec.attempt, state, time.time(), *extra])

    def _full(self) -> bool:
        """Whether there is no room for another event (it is then counted as dropped)."""
        if len(self._definitions) + len(self._transitions) < self._max:
            return False
        self._dropped += 1
        return True

    def failed(self, spec: TaskSpec, error: BaseException, text: str | None = None) -> None:
        """The attempt failed with ``error``; ``text`` is what its caller sees (with the
        remote traceback), where there is one."""
        message = text if text is not None else f"{type(error).__name__}: {error}"
        self.transition(spec, te.FAILED, error_type(error), _shortened(message, te.MAX_ERROR_MESSAGE))

    def lost(self, count: int) -> None:
        """``count`` events taken for a report that could not be sent."""
        self._dropped += count

    def has_events(self) -> bool:
        return self._max > 0 and bool(self._definitions or self._transitions or self._dropped)

    def take(self) -> tuple[bytes, bytes, int, int] | None:
        """Everything recorded since the last take, packed: (definitions, transitions,
        dropped, how many events), or None when there is nothing."""
        if not self.has_events():
            return None
        definitions = [self._definitions.popleft() for _ in range(len(self._definitions))]
        transitions = [self._transitions.popleft() for _ in range(len(self._transitions))]
        dropped, self._dropped = self._dropped, 0
        count = len(definitions) + len(transitions)
        return msgpack.packb(definitions), msgpack.packb(transitions), dropped, count


# The longest a process waits between looks at its buffer while it records nothing.
IDLE_INTERVAL_S = 1.0


def report_periodically(
    buffer: TaskEventBuffer,
    node: Callable[[], Connection | None],
    interval: float,
    stopped: Callable[[], bool],
) -> None:
    """On the I/O loop: report what ``buffer`` holds every ``interval`` until ``stopped``
    (a timer, not a sleeping task: nothing is left pending when the loop closes). While
    the process records nothing the timer slows, doubling up to a tick a second (an idle
    worker should not wake ten times a second for nothing); the first events after a
    quiet spell may so wait up to a second."""
    loop = asyncio.get_running_loop()

    def tick(wait: float) -> None:
        if stopped():
            return
        busy = buffer.has_events()
        report(buffer, node)
        after = interval if busy else min(wait * 2, max(interval, IDLE_INTERVAL_S))
        loop.call_later(after, tick, after)

    loop.call_later(interval, tick, interval)


def report(buffer: TaskEventBuffer, node: Callable[[], Connection | None]) -> None:
    """On the I/O loop: send what ``buffer`` holds to this process's node daemon, which
    passes it on to the gcs (the connection every process has: no process waits to reach
    the gcs, and the gcs is not reached by every worker). Counted as dropped if the node
    connection is gone."""
    batch = buffer.take()
    if batch is None:
        return
    definitions, transitions, dropped, count = batch
    conn = node()
    if conn is None or conn.closed:
        buffer.lost(count + dropped)
        return
    conn.notify(TaskEventBatch(buffer.reporter, definitions, transitions, dropped))


# Ray's ErrorType names for the ends a task can come to, by exception class name (the
# first along the class's MRO); anything else is an exception the task itself raised.
_ERROR_TYPES = {
    "TaskCancelledError": "TASK_CANCELLED",
    "WorkerCrashedError": "WORKER_DIED",
    "OutOfMemoryError": "OUT_OF_MEMORY",
    "OwnerDiedError": "OWNER_DIED",
    "ObjectLostError": "OBJECT_LOST",
    "ObjectReconstructionFailedError": "OBJECT_UNRECONSTRUCTABLE",
    "ActorDiedError": "ACTOR_DIED",
    "ActorUnavailableError": "ACTOR_UNAVAILABLE",
    "TaskPlacementGroupRemoved": "TASK_PLACEMENT_GROUP_REMOVED",
    "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
    "RuntimeEnvSetupError": "RUNTIME_ENV_SETUP_FAILED",
}


def _shortened(text: str, limit: int) -> str:
    """``text`` cut in the middle past ``limit``: a traceback keeps its first frames and
    the exception at its end."""
    if len(text) <= limit:
        return text
    head = limit // 4
    marker = "\n  ...\n"
    return text[:head] + marker + text[len(text) - (limit - head - len(marker)) :]


def error_type(error: BaseException) -> str:
    for cls in type(error).__mro__:
        name = _ERROR_TYPES.get(cls.__name__)
        if name is not None:
            return name
    return "TASK_EXECUTION_EXCEPTION"


@functools.lru_cache(maxsize=1024)
def qualified_name(function_name: str) -> str:
    """``module.qualname`` without its module (Ray's func_or_class_name): the longest
    leading part that names a loaded module is the module."""
    parts = function_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:cut]) in sys.modules:
            return ".".join(parts[cut:])
    return function_name
