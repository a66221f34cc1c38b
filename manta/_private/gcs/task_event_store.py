"""The gcs's task-event store: one row per task attempt, built from the events every
process reports (``common/task_events.py``), bounded, and queried by the state API.

Pure: batches in, rows and listings out. A malformed event is counted and skipped, never
raised: the reports come from every worker of the cluster.

The store also keeps the attempts counted by what the gcs's ``ray_tasks`` metric labels
them with (name, state, retry or not, job), up to date as rows change state, are defined
or are evicted: a scrape reads those counts (as many as the metric has series) instead
of walking 100,000 rows (40 ms) every time anyone, or the head's history, asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgpack

from manta._private.common import task_events as te
from manta._private.common.ids import ActorID, JobID, NodeID, ObjectID, PlacementGroupID, TaskID, WorkerID

# Filters compare these without regard to case ("running" finds RUNNING), as Ray's do.
_CASELESS = frozenset({"state", "type", "language"})
_RANK = te.RANK

Filter = tuple[str, str, Any]

# What ray_tasks labels an attempt with, besides its state: (name, or function where it
# has none; a retry or not; job id).
TallyKey = tuple[str, bool, bytes | None]


class Tally:
    """The attempts the store has of one ``TallyKey``, by state code."""

    __slots__ = ("by_state", "key", "rows")

    def __init__(self, key: TallyKey) -> None:
        self.key = key
        self.by_state = [0] * len(te.STATES)
        self.rows = 0


class TaskRow:
    # A plain slotted class: 100,000 of these are made as fast as tasks run.
    __slots__ = (
        "actor_id",
        "args",
        "attempt",
        "error_message",
        "error_type",
        "events",
        "func",
        "job_id",
        "name",
        "node_id",
        "owner",
        "parent_task_id",
        "pid",
        "placement_group_id",
        "resources",
        "state",
        "state_time",
        "tally",
        "task_id",
        "type",
        "worker_id",
    )

    def __init__(self, task_id: bytes, attempt: int) -> None:
        self.task_id, self.attempt = task_id, attempt
        self.name = self.func = ""
        self.type = te.NORMAL_TASK
        self.job_id: bytes | None = None
        self.parent_task_id: bytes | None = None
        self.actor_id: bytes | None = None
        self.resources: dict[str, Any] = {}
        self.args: tuple[bytes, ...] = ()  # ids of its ObjectRef arguments
        self.placement_group_id: bytes | None = None
        self.state, self.state_time = te.NIL, 0.0
        # Tuples, not lists: tuples of plain values drop out of the garbage collector's
        # walks, and 100,000 rows' worth of lists made each full collection slow.
        self.events: tuple[tuple[int, float], ...] = ()
        self.node_id: bytes | None = None
        self.worker_id: bytes | None = None
        self.owner: bytes | None = None  # the worker that reported its definition: its submitter
        self.pid: int | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.tally: Tally  # set by the store (_count) before any event is noted

    def note(self, state: int, at: float) -> None:
        self.events += ((state, at),)
        rank, mine = _RANK[state], _RANK[self.state]
        if rank > mine or (rank == mine and at >= self.state_time):
            # Two list updates: the only cost the counts add to most events.
            by_state = self.tally.by_state
            by_state[self.state] -= 1
            by_state[state] += 1
            self.state, self.state_time = state, at

    def first_time(self, state: int) -> float | None:
        return next((at for s, at in self.events if s == state), None)

    def end_time(self) -> float | None:
        return self.state_time if self.state >= te.FINISHED else None


@dataclass
class Listing:
    records: list[dict[str, Any]]
    total: int  # rows in the store
    matched: int  # rows that passed the filters, before the limit
    dropped: int  # events lost before they reached the store (evicted rows are not counted)


class TaskEventStore:
    def __init__(self, max_tasks: int) -> None:
        self.max_tasks = max_tasks
        self._rows: dict[tuple[bytes, int], TaskRow] = {}
        self._tallies: dict[TallyKey, Tally] = {}
        self.dropped_by_reporters = 0
        self.evicted = 0
        self.malformed = 0

    def __len__(self) -> int:
        return len(self._rows)

    # -- reports -----------------------------------------------------------------------------
    def add_batch(self, reporter: Any, definitions: Any, transitions: Any, dropped: Any) -> None:
        """A process's report: its events packed (common/task_events.py)."""
        try:
            node_id, worker_id, pid = reporter
            where = (_id_or_none(node_id, NodeID), _id_or_none(worker_id, WorkerID), int(pid))
            unpacked = [
                msgpack.unpackb(blob, raw=False, strict_map_key=False) for blob in (definitions, transitions)
            ]
        except (TypeError, ValueError, msgpack.UnpackException):
            self.malformed += 1
            return
        if not all(isinstance(events, list) for events in unpacked):
            self.malformed += 1
            return
        self.add(unpacked[0], unpacked[1], dropped, where)

    def add(
        self,
        definitions: Iterable[Any],
        transitions: Iterable[Any],
        dropped: Any,
        where: tuple[bytes | None, bytes | None, int | None] = (None, None, None),
    ) -> None:
        """Events already unpacked; ``where`` is the reporter's node, worker and pid, where
        the RUNNING events among them happened."""
        if type(dropped) is int and dropped > 0:
            self.dropped_by_reporters += dropped
        for entry in definitions:
            try:
                self._define(entry, where[1])
            except (TypeError, ValueError, IndexError, AttributeError):
                self.malformed += 1
        for entry in transitions:
            try:
                self._transition(entry, where)
            except (TypeError, ValueError, IndexError, AttributeError):
                self.malformed += 1
        excess = len(self._rows) - self.max_tasks
        if excess > 0:
            self._evict(excess)

    def _evict(self, n: int) -> None:
        """The ``n`` oldest rows go. One walk from the front for them all: each walk passes
        the slots that earlier evictions emptied (until the dict resizes), so a
        ``next(iter(rows))`` per row cost 40 us a row in a full store."""
        rows = self._rows
        for key in list(islice(rows, n)):
            self._uncount(rows.pop(key))
        self.evicted += n

    def _count(self, row: TaskRow) -> None:
        key = (row.name or row.func, row.attempt > 0, row.job_id)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally(key)
        tally.by_state[row.state] += 1
        tally.rows += 1
        row.tally = tally

    def _uncount(self, row: TaskRow) -> None:
        tally = row.tally
        tally.by_state[row.state] -= 1
        tally.rows -= 1
        if not tally.rows:  # the last of its name and job: its series go
            del self._tallies[tally.key]

    def _row(self, task_id: Any, attempt: Any) -> TaskRow:
        row = self._rows.get((task_id, attempt))  # a row found had its key checked
        if row is None:
            row = self._new_row(task_id, attempt)
            self._count(row)
        return row

    def _new_row(self, task_id: Any, attempt: Any) -> TaskRow:
        """A row, not yet counted (see _count)."""
        if type(task_id) is not bytes or len(task_id) != TaskID.SIZE:
            raise ValueError("task id")
        if type(attempt) is not int or attempt < 0:
            raise ValueError("attempt")
        row = self._rows[(task_id, attempt)] = TaskRow(task_id, attempt)
        first = self._rows.get((task_id, 0)) if attempt else None
        if first is not None:  # a retry: what the task is was said once, for attempt 0
            _copy_definition(first, row)
        return row

    def _define(self, entry: Any, owner: bytes | None) -> None:
        task_id, attempt, state, at, name, func, kind, job, parent, actor, resources, pg, args = entry
        _check_state(state, at)
        if not (type(name) is str and type(func) is str and type(kind) is int and 0 <= kind < len(te.TYPES)):
            raise ValueError("definition")
        if type(resources) is not dict:
            raise ValueError("resources")
        if type(args) is not list or (
            args and not all(type(a) is bytes and len(a) == ObjectID.SIZE for a in args)
        ):
            raise ValueError("arguments")
        ids = (
            _id_or_none(job, JobID),
            _id_or_none(parent, TaskID),
            _id_or_none(actor, ActorID),
            _id_or_none(pg, PlacementGroupID),
        )
        # Checked in full before the row changes: its counts must follow its fields.
        row = self._rows.get((task_id, attempt))
        if row is None:
            row = self._new_row(task_id, attempt)
        else:  # its transitions came first: counted as a task without a name until now
            self._uncount(row)
        row.name, row.func, row.type = name, func, kind
        row.job_id, row.parent_task_id, row.actor_id, row.placement_group_id = ids
        row.resources = resources  # listed back as it came: any msgpack value is harmless
        row.args = tuple(args)
        row.owner = owner
        self._count(row)
        row.note(state, at)

    def _transition(self, entry: Any, where: tuple[bytes | None, bytes | None, int | None]) -> None:
        state, at = entry[2], entry[3]
        _check_state(state, at)
        row = self._row(entry[0], entry[1])
        if state == te.RUNNING:
            row.node_id, row.worker_id, row.pid = where
        elif state == te.FAILED and len(entry) == 6:
            row.error_type = str(entry[4])[:200]
            row.error_message = str(entry[5])[: te.MAX_ERROR_MESSAGE]
        row.note(state, at)

    # -- queries -----------------------------------------------------------------------------
    def latest(self, task_id: bytes) -> TaskRow | None:
        """The last attempt the store has of a task."""
        found, attempt = None, 0
        while (row := self._rows.get((task_id, attempt))) is not None:
            found, attempt = row, attempt + 1
        return found

    def rows(self) -> Iterable[TaskRow]:
        return self._rows.values()

    def counts(self) -> dict[tuple[str, int, bool, bytes | None], int]:
        """Attempts by (name or function, state code, retry or not, job id), none of them
        0: read from the counts kept as rows change, in as many steps as there are."""
        return {
            (name, state, retry, job): n
            for (name, retry, job), tally in self._tallies.items()
            for state, n in enumerate(tally.by_state)
            if n
        }

    def query(self, filters: list[Filter], limit: int, detail: bool, offset: int = 0) -> Listing:
        """Rows passing every filter, oldest first, at most ``limit`` of them as records
        after the first ``offset``. Raises ValueError for an unknown column or operator
        (naming the valid ones)."""
        tests = [_test(f) for f in filters]
        matched = 0
        chosen: list[TaskRow] = []
        state = _only_state(filters)
        if not tests:  # a page of everything: no row need be tested
            matched = len(self._rows)
            chosen = list(islice(self._rows.values(), offset, offset + limit))
        elif limit == 0 and state is not None:  # only a count (the dashboard's): from the tallies
            matched = sum(tally.by_state[state] for tally in self._tallies.values()) if state >= 0 else 0
        else:
            for row in self._rows.values():
                if all(test(row) for test in tests):
                    matched += 1
                    if matched > offset and len(chosen) < limit:
                        chosen.append(row)
        return Listing(
            [record(row, detail) for row in chosen],
            len(self._rows),
            matched,
            self.dropped_by_reporters,
        )

    def timeline(self) -> list[list[Any]]:
        """Every attempt that started running, oldest first, as [task_id, attempt, name,
        func_or_class_name, type, state, node_id, worker_pid, start, end | None] (times in
        seconds; ids hex): what a Chrome trace needs, for 100,000 attempts in one reply."""
        rows = []
        for row in self._rows.values():
            start = row.first_time(te.RUNNING)
            if start is not None:
                rows.append(
                    [
                        row.task_id.hex(),
                        row.attempt,
                        row.name,
                        row.func,
                        te.TYPES[row.type],
                        te.STATES[row.state],
                        _hex(row.node_id),
                        row.pid,
                        start,
                        row.end_time(),
                    ]
                )
        return rows

    def summary(self) -> dict[str, Any]:
        """Rows counted by function (or actor class and method) and state, as Ray's
        ``summarize_tasks`` shows them."""
        by_name: dict[str, dict[str, Any]] = {}
        by_type = [0] * len(te.TYPES)
        for row in self._rows.values():
            by_type[row.type] += 1
            entry = by_name.get(row.func)
            if entry is None:
                entry = by_name[row.func] = {
                    "func_or_class_name": row.func,
                    "type": te.TYPES[row.type],
                    "state_counts": {},
                }
            counts = entry["state_counts"]
            state = te.STATES[row.state]
            counts[state] = counts.get(state, 0) + 1
        return {
            "summary": by_name,
            "total_tasks": by_type[te.NORMAL_TASK],
            "total_actor_tasks": by_type[te.ACTOR_TASK],
            "total_actor_scheduled": by_type[te.ACTOR_CREATION_TASK],
            "summary_by": "func_name",
            "dropped": self.dropped_by_reporters,
            "evicted": self.evicted,
            "malformed": self.malformed,
        }


def _check_state(state: Any, at: Any) -> None:
    if type(state) is not int or not 0 < state < len(te.STATES):
        raise ValueError("state")
    if type(at) is not float and type(at) is not int:
        raise ValueError("time")


def _id_or_none(value: Any, cls: type) -> bytes | None:
    if value is None:
        return None
    if type(value) is not bytes or len(value) != cls.SIZE:  # type: ignore[attr-defined]
        raise ValueError(cls.__name__)
    return value


def _copy_definition(source: TaskRow, row: TaskRow) -> None:
    row.name, row.func, row.type = source.name, source.func, source.type
    row.job_id, row.parent_task_id, row.actor_id = source.job_id, source.parent_task_id, source.actor_id
    row.resources, row.placement_group_id = source.resources, source.placement_group_id
    row.args = source.args


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _ms(at: float | None) -> int | None:
    return None if at is None else int(at * 1000)


# How a filter reads each column of a row.
_GETTERS: dict[str, Callable[[TaskRow], Any]] = {
    "task_id": lambda r: r.task_id.hex(),
    "attempt_number": lambda r: r.attempt,
    "name": lambda r: r.name,
    "state": lambda r: te.STATES[r.state],
    "job_id": lambda r: _hex(r.job_id),
    "actor_id": lambda r: _hex(r.actor_id),
    "type": lambda r: te.TYPES[r.type],
    "func_or_class_name": lambda r: r.func,
    "parent_task_id": lambda r: _hex(r.parent_task_id),
    "node_id": lambda r: _hex(r.node_id),
    "worker_id": lambda r: _hex(r.worker_id),
    "worker_pid": lambda r: r.pid,
    "error_type": lambda r: r.error_type,
    "language": lambda r: "PYTHON",
    "is_debugger_paused": lambda r: None,
    "placement_group_id": lambda r: _hex(r.placement_group_id),
}


def _only_state(filters: list[Filter]) -> int | None:
    """The state code of a lone ``state = X`` filter (-1 when X is no state), else None."""
    if len(filters) != 1 or filters[0][0] != "state" or filters[0][1] != "=":
        return None
    wanted = str(filters[0][2]).upper()
    return te.STATES.index(wanted) if wanted in te.STATES else -1


def _test(condition: Filter) -> Callable[[TaskRow], bool]:
    key, op, value = condition
    te.check_filter(key, op)
    get = _GETTERS[key]
    want = str(value).upper() if key in _CASELESS else str(value)
    if op == "=":
        return lambda row: str(get(row)) == want
    return lambda row: str(get(row)) != want


def record(row: TaskRow, detail: bool) -> dict[str, Any]:
    """A row as Ray's TaskState fields (the detail ones None without ``detail``)."""
    out: dict[str, Any] = {name: _GETTERS[name](row) for name in te.COLUMNS}
    if not detail:
        out.update(dict.fromkeys(te.DETAIL_COLUMNS))
        return out
    events = sorted(row.events, key=lambda e: e[1])  # they arrive from several processes
    out.update(
        language="PYTHON",
        required_resources=dict(row.resources),
        runtime_env_info=None,
        placement_group_id=_hex(row.placement_group_id),
        events=[{"state": te.STATES[s], "created_ms": _ms(at)} for s, at in events],
        profiling_data=None,
        creation_time_ms=_ms(events[0][1]) if events else None,
        start_time_ms=_ms(row.first_time(te.RUNNING)),
        end_time_ms=_ms(row.end_time()),
        task_log_info=None,
        error_message=row.error_message,
        is_debugger_paused=None,
        call_site=None,
        label_selector=None,
    )
    return out
