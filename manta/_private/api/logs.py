"""Finding and reading log files across the cluster, for ``manta logs`` and the head's
HTTP log routes (both reach node daemons with the cluster's credential).

Which file holds what: a worker writes ``worker-<id12>.out``/``.err`` on its node, so an
actor's output is its worker's file (the gcs's actor table names the worker), a task's is
the file of the worker its attempt ran in (the gcs's task-event store records it), a pid's
is found by asking the nodes which of their workers has it, and a submitted job's driver
writes ``job-driver-<submission id>.log`` on the node it ran on. Ids that name nothing, and
nodes that are not there, are a ``LogLookupError`` with the id in its message.

Worker files carry task markers (lines the executor writes when the running task changes);
``TaskLines`` strips them, and for a task keeps only the lines written under its name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from manta._private.api.node_calls import ask_nodes
from manta._private.common import log_files
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, TaskID
from manta._private.common.session import TASK_MARKER
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher, connect

# Lines printed when no number is asked for (Ray's default).
DEFAULT_TAIL = 1000
# Bytes asked for per read, and how often a follower asks again when nothing was new.
READ_BYTES = 1 << 20
FOLLOW_INTERVAL_S = 0.5
_MARKER = TASK_MARKER.encode()


class LogLookupError(LookupError):
    """What was asked for names no node, file, actor, task or worker (404), or is not a
    valid name or id (400); ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class Caller(Protocol):
    """A connection to the gcs (or the HTTP service's link to it)."""

    def call(self, msg: Any) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class LogTarget:
    """A file on a node, and (for a task) the task name whose lines are wanted."""

    node: m.NodeInfo
    filename: str
    task_name: str = ""
    # Said before the output (e.g. that an actor task's lines are its actor's whole log).
    note: str = ""


def categorize(names: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(log_files.category(name), []).append(name)
    return out


# -- nodes ---------------------------------------------------------------------------------------
async def live_nodes(gcs: Caller) -> list[m.NodeState]:
    states: list[m.NodeState] = await gcs.call(m.GetNodes())
    return sorted((s for s in states if s.alive), key=lambda s: not s.info.is_head)


def pick_nodes(states: list[m.NodeState], node_id: str | None, node_ip: str | None) -> list[m.NodeState]:
    """The live nodes whose id starts with ``node_id`` (at least 8 hex digits, or all of
    it) and whose address is ``node_ip``; every live node when neither is given."""
    chosen = states
    if node_id:
        wanted = node_id.strip().lower()
        if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
            raise LogLookupError(f"{node_id[:80]!r} is not a node id (hex, at least its first 8 digits)", 400)
        chosen = [s for s in chosen if s.info.node_id.hex().startswith(wanted)]
    if node_ip:
        chosen = [s for s in chosen if s.info.host == node_ip]
    if not chosen:
        what = " and ".join(
            x for x in (f"id {node_id}" if node_id else "", f"ip {node_ip}" if node_ip else "") if x
        )
        known = ", ".join(f"{s.info.node_id.hex()} ({s.info.host})" for s in states) or "none"
        raise LogLookupError(f"no live node with {what}; the live nodes are: {known}")
    if node_id and len(chosen) > 1:
        raise LogLookupError(f"node id prefix {node_id} matches {len(chosen)} nodes: give more of it", 400)
    return chosen


async def list_logs(
    gcs: Caller, token: bytes, config: Config, node_id: str | None, node_ip: str | None, glob: str = "*"
) -> list[tuple[m.NodeInfo, m.LogFileListing]]:
    """Each chosen node's log files matching ``glob``, the head first."""
    _check(glob or "*")  # a pattern of names, as a name: no paths
    nodes = pick_nodes(await live_nodes(gcs), node_id, node_ip)
    answers = await ask_nodes(nodes, m.ListLogFiles(glob or "*"), token, config)
    order = {s.info.node_id: i for i, s in enumerate(nodes)}
    return sorted(answers, key=lambda a: order.get(a[0].node_id, len(order)))


# -- what holds an id's output -------------------------------------------------------------------
def _worker_file(worker_id_hex: str, err: bool) -> str:
    return f"worker-{worker_id_hex[:12]}.{'err' if err else 'out'}"


def _node(states: list[m.NodeState], node_id_hex: str, what: str) -> m.NodeInfo:
    for state in states:
        if state.info.node_id.hex() == node_id_hex:
            return state.info
    raise LogLookupError(f"{what} ran on node {node_id_hex}, which is no longer in the cluster")


def _parse_id(text: str, size: int, kind: str) -> str:
    value = (text or "").strip().lower()
    try:
        if len(bytes.fromhex(value)) == size:
            return value
    except ValueError:
        pass
    raise LogLookupError(f"{text[:80]!r} is not an {kind} id ({2 * size} hex digits)", 400)


async def actor_target(gcs: Caller, actor_id: str, err: bool) -> LogTarget:
    wanted = _parse_id(actor_id, ActorID.SIZE, "actor")
    for info in await gcs.call(m.ListActors()):
        if info.actor_id.hex() != wanted:
            continue
        if info.address is None:
            raise LogLookupError(f"actor {wanted} ({info.state}) has not started on a node yet")
        node = _node(await live_nodes(gcs), info.address.node_id.hex(), f"actor {wanted}")
        return LogTarget(node, _worker_file(info.address.worker_id.hex(), err))
    raise LogLookupError(f"no actor with id {wanted} in this cluster")


async def task_target(gcs: Caller, task_id: str, attempt: int, err: bool) -> LogTarget:
    wanted = _parse_id(task_id, TaskID.SIZE, "task")
    listing: m.TaskListing = await gcs.call(m.ListTasks([["task_id", "=", wanted]], 10_000, False))
    if not listing.records:
        raise LogLookupError(f"no task with id {wanted} in the task-event store (unknown, or evicted)")
    record = next((r for r in listing.records if r.get("attempt_number") == attempt), None)
    if record is None:
        attempts = sorted(int(r.get("attempt_number") or 0) for r in listing.records)
        raise LogLookupError(f"task {wanted} has no attempt {attempt} (its attempts: {attempts})")
    if not record.get("worker_id") or not record.get("node_id"):
        raise LogLookupError(
            f"task {wanted} (attempt {attempt}, {record.get('state')}) has not run on a worker yet"
        )
    node = _node(await live_nodes(gcs), record["node_id"], f"task {wanted}")
    filename = _worker_file(record["worker_id"], err)
    if record.get("actor_id"):
        note = f"(task {wanted} is a call of actor {record['actor_id']}: this is its actor's whole log)"
        return LogTarget(node, filename, note=note)
    if not record.get("name"):  # its owner's report (with the name) has not come in yet
        return LogTarget(
            node, filename, note=f"(task {wanted}'s name is not known yet: this is its worker's whole log)"
        )
    return LogTarget(node, filename, task_name=str(record["name"]))


async def pid_target(
    gcs: Caller, token: bytes, config: Config, pid: int, node_id: str | None, node_ip: str | None, err: bool
) -> LogTarget:
    found = [
        (info, worker_id)
        for info, listing in await list_logs(gcs, token, config, node_id, node_ip, "worker-*")
        for worker_id, worker_pid in listing.workers
        if worker_pid == pid
    ]
    if not found:
        raise LogLookupError(
            f"no worker with pid {pid} on {'that node' if node_id or node_ip else 'any live node'} "
            "(a driver's output is not in the cluster's logs)"
        )
    if len(found) > 1:
        raise LogLookupError(f"workers on {len(found)} nodes have pid {pid}: say which with --node-id", 400)
    return LogTarget(found[0][0], _worker_file(found[0][1], err))


async def file_target(
    gcs: Caller, token: bytes, config: Config, filename: str, node_id: str | None, node_ip: str | None
) -> LogTarget:
    """The node holding ``filename``: the one given, else the head when it has one (as in
    Ray), else the only node that has it."""
    _check(filename)
    holders = [
        info
        for info, listing in await list_logs(gcs, token, config, node_id, node_ip, filename)
        if listing.files
    ]
    if not holders:
        where = "that node" if node_id or node_ip else "any live node"
        raise LogLookupError(f"no log file named {filename!r} on {where}")
    heads = [info for info in holders if info.is_head]
    if heads or len(holders) == 1:
        return LogTarget((heads or holders)[0], filename)
    nodes = ", ".join(info.node_id.hex() for info in holders)
    raise LogLookupError(
        f"{len(holders)} nodes have a file {filename!r} ({nodes}): say which with --node-id", 400
    )


async def job_target(gcs: Caller, token: bytes, config: Config, submission_id: str) -> LogTarget:
    # The name the job supervisor writes (dashboard/job_state.log_name).
    filename = f"job-driver-{submission_id}.log"
    try:
        return await file_target(gcs, token, config, filename, None, None)
    except LogLookupError as e:
        if e.status == 404:
            raise LogLookupError(
                f"no log of a job with submission id {submission_id!r} on a live node"
            ) from None
        raise


def _check(filename: str) -> None:
    try:
        log_files.check_name(filename)
    except log_files.LogAccessError as e:
        raise LogLookupError(str(e), e.status) from None


# -- reading -------------------------------------------------------------------------------------
class TaskLines:
    """Worker output without its task markers; with ``task_name``, only the lines written
    while a task of that name ran. Whole lines only: a partial last line waits."""

    def __init__(self, task_name: str = "", label: str | None = None) -> None:
        self._task_name = task_name
        self._label = label  # the running task's name, once a marker said it
        self._partial = b""

    def feed(self, data: bytes, final: bool = False) -> list[bytes]:
        data = self._partial + data
        lines = data.splitlines(keepends=True)
        self._partial = b""
        if lines and not lines[-1].endswith(b"\n") and not final:
            self._partial = lines.pop()
        kept = []
        for line in lines:
            if line.startswith(_MARKER):
                self._label = line[len(_MARKER) :].rstrip(b"\r\n").decode(errors="replace")
            elif not self._task_name or self._label == self._task_name:
                kept.append(line)
        return kept


@contextlib.asynccontextmanager
async def node_connection(node: m.NodeInfo, token: bytes, config: Config) -> AsyncIterator[Connection]:
    """A connection to ``node``'s daemon (its Unix socket when it is on this host)."""
    conn = None
    if node.unix:
        with contextlib.suppress(Exception):
            conn = await connect(
                "unix:" + node.unix, token, Dispatcher(), kind="cli", max_frame_bytes=config.max_frame_bytes
            )
    if conn is None:
        try:
            conn = await connect(
                f"{node.host}:{node.port}",
                token,
                Dispatcher(),
                kind="cli",
                max_frame_bytes=config.max_frame_bytes,
            )
        except ConnectionLost as e:
            raise LogLookupError(f"cannot reach node {node.node_id.hex()}: {e}", 503) from None
    try:
        yield conn
    finally:
        conn.close()


class LogReader:
    """Reads ``target`` on an open node connection: its last ``lines`` lines (all when
    negative), then, with ``follow``, what is written after them, until cancelled.
    ``truncated`` says whether lines before the first ones read were left out."""

    def __init__(
        self, conn: Connection, target: LogTarget, lines: int, follow: bool, timeout: float = 30.0
    ) -> None:
        self._conn = conn
        self._target = target
        self._lines = lines
        self._follow = follow
        self._timeout = timeout
        markers = log_files.category(target.filename) in ("worker_out", "worker_err")
        self._filter = TaskLines(target.task_name) if markers else None
        self._position = log_files.Position()
        self.truncated = False

    async def _read(self, lines: int) -> bytes:
        msg = m.ReadLogFile(
            self._target.filename, lines, self._position.inode, self._position.offset, READ_BYTES
        )
        chunk: m.LogFileChunk = await asyncio.wait_for(self._conn.call(msg), self._timeout)
        if chunk.status:
            raise LogLookupError(f"node {self._target.node.node_id.hex()[:12]}: {chunk.error}", chunk.status)
        self._position = log_files.Position(chunk.inode, chunk.offset)
        self.truncated = self.truncated or chunk.truncated
        return bytes(chunk.data)

    def stop(self) -> None:
        """End a follow after its current read (from the reader's loop: a signal handler)."""
        self._follow = False

    def _kept(self, data: bytes, final: bool = False) -> bytes:
        return data if self._filter is None else b"".join(self._filter.feed(data, final))

    async def _first(self) -> bytes:
        if self._target.task_name:  # only that task's lines: the labels come from the start
            kept: deque[bytes] = deque(maxlen=None if self._lines < 0 else self._lines)
            while data := await self._read(-1):
                kept.extend(self._filter.feed(data) if self._filter else [data])
            return b"".join(kept)
        if self._lines >= 0:
            return self._kept(await self._read(self._lines))
        parts = []
        while data := await self._read(-1):
            parts.append(self._kept(data))
        return b"".join(parts)

    async def chunks(self, idle_ticks: bool = False) -> AsyncGenerator[bytes, None]:
        """The output, chunk by chunk; with ``idle_ticks``, an empty chunk after each
        look that found nothing new (a follower's consumer then checks its reader is
        still there)."""
        first = await self._first()
        if first or idle_ticks:
            yield first
        while self._follow:
            data = await self._read(-1)
            kept = self._kept(data) if data else b""
            if kept or idle_ticks:
                yield kept
            if not data:
                await asyncio.sleep(FOLLOW_INTERVAL_S)
        if self._filter is not None and (rest := self._kept(b"", final=True)):
            yield rest
