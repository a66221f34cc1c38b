"""Why a task has not finished: a chain of reasons with ids, from the task-event store,
the nodes' resources and the actors' states (``manta why``, ``util.state.explain``).

Pure: the store and views of nodes and actors in, lines of text out. A task waiting on
an argument is explained by the task that makes the argument, and so on down the chain.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from manta._private.common import task_events as te
from manta._private.common.ids import ObjectID
from manta._private.gcs.task_event_store import TaskEventStore, TaskRow

# How deep a chain of arguments is followed, and how many tasks holding resources are named.
MAX_DEPTH = 8
MAX_HOLDERS = 5
# How many dead workers are remembered: far more than die between a task's submission and
# someone asking why it never ran, at about 150 bytes each.
MAX_DEAD_WORKERS = 10_000


@dataclass(frozen=True)
class NodeResources:
    node_id: str  # hex
    alive: bool
    total: dict[str, float]
    available: dict[str, float]


# An actor's id -> (state, death cause), or None if the gcs does not know it.
ActorStates = Callable[[bytes], "tuple[str, str] | None"]


class DeadWorkers:
    """The workers and drivers the gcs heard have died, the newest kept, each with what
    happened to it: a task's owner among them took the task's pending work with it."""

    def __init__(self, limit: int = MAX_DEAD_WORKERS) -> None:
        self._limit = limit
        self._how: OrderedDict[bytes, str] = OrderedDict()

    def add(self, worker_id: bytes, how: str) -> None:
        self._how[worker_id] = how
        if len(self._how) > self._limit:
            self._how.popitem(last=False)

    def get(self, worker_id: bytes) -> str | None:
        return self._how.get(worker_id)

    def forget(self, worker_id: bytes) -> None:
        self._how.pop(worker_id, None)


def explain(
    store: TaskEventStore,
    task_id: bytes,
    nodes: list[NodeResources],
    actors: ActorStates,
    dead: DeadWorkers,
    now: float,
) -> list[str]:
    explainer = _Explainer(store, nodes, actors, dead, now)
    explainer.task(task_id, 0)
    return explainer.lines


class _Explainer:
    def __init__(
        self,
        store: TaskEventStore,
        nodes: list[NodeResources],
        actors: ActorStates,
        dead: DeadWorkers,
        now: float,
    ) -> None:
        self.store, self.nodes, self.actors, self.dead, self.now = store, nodes, actors, dead, now
        self.lines: list[str] = []
        self.seen: set[bytes] = set()

    def task(self, task_id: bytes, depth: int) -> None:
        pad = "  " * depth
        row = self.store.latest(task_id)
        if row is None:
            self.lines.append(
                f"{pad}task {task_id.hex()}: no record of it (not submitted yet, submitted with "
                "enable_task_events=False, or evicted from the task-event store)"
            )
            return
        self.seen.add(task_id)
        label = f"{pad}task {row.name or row.func or '?'} ({task_id.hex()}, attempt {row.attempt})"
        state = row.state
        if state == te.FINISHED:
            self.lines.append(f"{label} finished")
        elif state == te.FAILED:
            first_line = (row.error_message or "").splitlines()[0][:300] if row.error_message else ""
            self.lines.append(f"{label} failed: {row.error_type}: {first_line}")
        elif (owner := self.dead_owner(row)) is not None:
            # Its owner kept it (and would have kept its result): both went with the owner.
            self.lines.append(
                f"{label} will never finish: its owner, {owner}; the task and its result went "
                "with it (getting the result raises OwnerDiedError)"
            )
        elif state == te.RUNNING:
            start = row.first_time(te.RUNNING) or self.now
            where = f"node {row.node_id.hex()[:12] if row.node_id else '?'}, worker pid {row.pid}"
            self.lines.append(f"{label} is running, for {max(self.now - start, 0.0):.1f} s, on {where}")
        elif state == te.SUBMITTED_TO_WORKER:
            self.lines.append(
                f"{label} was sent to a worker and has not started: it waits behind the task that "
                "worker is running, or for the worker to start"
            )
        elif state == te.PENDING_NODE_ASSIGNMENT:
            self.lines.append(f"{label} waits for a worker: {self.placement(row)}")
        else:  # waiting for its arguments, or (an actor call) to be sent to its actor
            self.waiting(row, label, depth)

    def dead_owner(self, row: TaskRow) -> str | None:
        if row.owner is None:
            return None
        how = self.dead.get(row.owner)
        return None if how is None else f"worker {row.owner.hex()}, {how}"

    def waiting(self, row: TaskRow, label: str, depth: int) -> None:
        pad = "  " * depth
        if not row.args:
            self.lines.append(
                self.actor_wait(row, label)
                if row.actor_id is not None
                else f"{label} waits for its arguments"
            )
            return
        self.lines.append(f"{label} waits for {len(row.args)} argument(s):")
        for raw in row.args:
            arg = ObjectID(raw)
            if arg.is_put():
                self.lines.append(f"{pad}  argument {arg.hex()}: an object put by the process that owns it")
                continue
            producer = bytes(arg.task_id())
            self.lines.append(f"{pad}  argument {arg.hex()} is a result of:")
            if producer in self.seen or depth + 2 > MAX_DEPTH:
                self.lines.append(f"{pad}    task {producer.hex()} (explained above, or too deep to follow)")
            else:
                self.task(producer, depth + 2)

    def actor_wait(self, row: TaskRow, label: str) -> str:
        assert row.actor_id is not None
        known = self.actors(row.actor_id)
        if known is None:
            return f"{label} waits for its actor {row.actor_id.hex()}, which the gcs does not know"
        if known[0] == "ALIVE":
            return f"{label} waits to be sent to its actor {row.actor_id.hex()}: calls before it go first"
        cause = f" ({known[1]})" if known[1] else ""
        return f"{label} waits for its actor {row.actor_id.hex()}, which is {known[0]}{cause}"

    def placement(self, row: TaskRow) -> str:
        need = {k: v for k, v in row.resources.items() if isinstance(v, (int, float)) and v > 0}
        alive = [n for n in self.nodes if n.alive]
        could = [n for n in alive if all(n.total.get(k, 0.0) >= v for k, v in need.items())]
        if not could:
            have = (
                "; ".join(f"node {n.node_id[:12]}: {_amounts(n.total)}" for n in alive) or "no node is alive"
            )
            return f"no node can ever run it: it needs {_amounts(need)} ({have}); it is infeasible"
        if any(all(n.available.get(k, 0.0) >= v for k, v in need.items()) for n in could):
            return f"a node has {_amounts(need)} free; its worker is being started or leased"
        could_ids = {n.node_id for n in could}
        holders = [
            r
            for r in self.store.rows()
            if r.state in (te.SUBMITTED_TO_WORKER, te.RUNNING)
            and (r.node_id is None or r.node_id.hex() in could_ids)
            and r.task_id != row.task_id
        ]
        named = ", ".join(f"{r.name or r.func} ({r.task_id.hex()})" for r in holders[:MAX_HOLDERS])
        more = f" and {len(holders) - MAX_HOLDERS} more" if len(holders) > MAX_HOLDERS else ""
        users = f"held by running tasks: {named}{more}" if holders else "held by actors or placement groups"
        return f"it needs {_amounts(need)}, and every node that could run it has them in use, {users}"


def _amounts(resources: dict[str, float]) -> str:
    shown = {k: v for k, v in resources.items() if not k.startswith("node:")}
    return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in sorted(shown.items())) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
