"""What the running task is, and what running tasks needs of the process that runs them.

``TaskHost`` is the narrow interface the ``CoreWorker`` provides to the helpers that put
objects and run tasks (``ObjectManager``, ``TaskExecutor``, ``LocalRunner``): the current
task's context, entering and leaving one, and the actor this process hosts. Like
``peers.Peers``, it lets a helper depend on these few members rather than on the whole
core worker.
"""

from __future__ import annotations

import contextvars
import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

from manta._private.common.ids import ActorID, JobID, TaskID
from manta._private.core_worker.task_events import TaskEventBuffer
from manta._private.rpc import messages as m


@dataclass(slots=True)
class TaskContext:
    """What the running task (or the driver) is, for nested submission and the runtime context."""

    task_id: TaskID
    job_id: JobID
    name: str = ""
    resources: dict[str, float] = field(default_factory=dict)
    instance_ids: dict[str, list[str]] = field(default_factory=dict)
    put_counter: Any = field(default_factory=lambda: itertools.count(1))
    depth: int = 0
    # [group id, bundle index, capture child tasks] when it runs in a placement group.
    placement_group: list[Any] | None = None


class TaskHost(Protocol):
    # The actor this process hosts (set when it is created; local mode sets it around
    # each call), and what it holds, which its methods inherit.
    actor_id: ActorID | None
    actor_placement_group: list[Any] | None
    actor_instance_ids: dict[str, list[str]]
    actor_resources: dict[str, float]
    # Where the tasks it runs record that they started and how they ended.
    task_events: TaskEventBuffer

    @property
    def is_driver(self) -> bool:
        """Whether this process is a driver (whose blocked gets lend no task's CPU)."""
        ...

    @property
    def context(self) -> TaskContext:
        """The running task's context; the driver's (or an idle worker's) outside tasks."""
        ...

    def task_running(self) -> bool:
        """Whether the calling thread (or asyncio task) runs a task of this process."""
        ...

    def enter_task(
        self, spec: m.TaskSpec, instance_ids: dict[str, list[str]]
    ) -> contextvars.Token[TaskContext | None]:
        """Make ``spec`` the running task of this thread (or asyncio task)."""
        ...

    def exit_task(self, token: contextvars.Token[TaskContext | None]) -> None:
        """Leave the task ``enter_task`` entered."""
        ...

    def report_task_events_now(self) -> None:
        """Send the recorded task events at once (this worker may be killed next)."""
        ...

    def ensure_runtime_env(self, env: dict[str, Any] | None) -> None:
        """Enter the runtime env ``env`` before this worker's first task."""
        ...

    def owns_objects(self) -> bool:
        """Whether others may still need this process (objects, actors, tasks it owns)."""
        ...

    def exit_after_replies(self) -> None:
        """End the worker process once what it has sent is on the wire."""
        ...
