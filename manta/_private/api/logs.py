"""Finding and reading log files across the cluster, for ``manta logs`` and the head's
HTTP log routes (both reach node daemons with the cluster's credential).

Which file holds what: a worker writes ``worker-<id12>.out``/``.err`` on its node, so an
actor's output is its worker's file (the gcs's actor table names the worker), a task's is
the file of the worker its attempt ran in (the gcs's task-event store records it), a pid's
is found by asking the nodes which of their workers has it, and a submitted job's driver
writes ``job-driver-<submission id>.log`` on the node it ran on (the names:
common/session.py). Ids that name nothing, and nodes that are not there, are a
``LogLookupError`` with the id in its message.

Worker files carry task markers (lines the executor writes when the running task changes);
``TaskLines`` strips them, and for a task keeps only the lines written under its name.

Reading is bounded: one answer carries at most ``MAX_ANSWER_BYTES`` of a file and says so
(a ``Notice``) where it was cut; a whole-file read stops where the file ended when it was
asked for, however fast it grows; a task's lines are looked for in at most
``MAX_TASK_SCAN_BYTES`` of its worker's output, from its oldest rotated copy on.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as globbing
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from manta._private.api.node_calls import UNREACHABLE as UNREACHABLE
from manta._private.api.node_calls import ask_nodes, connect_node
from manta._private.common import log_files
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, NodeID, TaskID
from manta._private.common.log_files import Position
from manta._private.common.session import TASK_MARKER, job_driver_log_name, worker_log_name
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection

# Lines printed when no number is asked for (Ray's default).
DEFAULT_TAIL = 1000
# Bytes asked for per read, and how often a follower asks again when nothing was new.
READ_BYTES = 1 << 20
FOLLOW_INTERVAL_S = 0.5
# The most bytes of a file one answer carries (a whole file, a long tail, a task's
# lines); past it the answer is cut, and ends with a notice that says so.
MAX_ANSWER_BYTES = 64 << 20
# The most bytes of a worker's output read to find one task's lines. A line belongs to
# the task named by the last marker above it, so the search starts as far back as this
# allows: at the oldest rotated copy when they all fit.
MAX_TASK_SCAN_BYTES = 256 << 20
_MARKER = TASK_MARKER.encode()


class LogLookupError(LookupError):
    """What was asked for names no node, file, actor, task or worker (404), or is not a
    valid name or id (400), or its node cannot be reached (503); ``status`` is the HTTP
    status."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class Caller(Protocol):
    """A connection to the gcs or a node daemon (or the HTTP service's link to the gcs)."""

    def call(self, msg: Any) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class LogTarget:
    """A file on a node, and (for a task) the task name whose lines are wanted."""

    node: m.NodeInfo
    filename: str
    task_name: str = ""
    # Said before the output (e.g. that an actor task's lines are its actor's whole log).
    note: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Said about an answer, not part of the file: where it was cut, or why it ended."""

    text: str


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
    gcs: Caller,
    token: bytes,
    config: Config,
    node_id: str | None,
    node_ip: str | None,
    glob: str = "*",
    first_only: bool = False,
) -> list[tuple[m.NodeInfo, m.LogFileListing]]:
    """Each chosen node's log files matching ``glob``, the head first; with
    ``first_only``, only the first chosen node is asked (the head, when it is chosen)."""
    _check(glob or "*")  # a pattern of names, as a name: no paths
    nodes = pick_nodes(await live_nodes(gcs), node_id, node_ip)
    return await _listings(nodes[:1] if first_only else nodes, glob or "*", token, config)


async def _listings(
    nodes: list[m.NodeState], glob: str, token: bytes, config: Config
) -> list[tuple[m.NodeInfo, m.LogFileListing]]:
    if not nodes:
        return []
    answers = await ask_nodes(nodes, m.ListLogFiles(glob), token, config)
    order = {s.info.node_id: i for i, s in enumerate(nodes)}
    return sorted(answers, key=lambda a: order.get(a[0].node_id, len(order)))


# -- what holds an id's output -------------------------------------------------------------------
def _worker_file(worker_id_hex: str, err: bool) -> str:
    return f"{worker_log_name(worker_id_hex)}.{'err' if err else 'out'}"


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
        address = info.address or info.last_address
        if address is not None:
            node_id, worker_id = address.node_id.hex(), address.worker_id.hex()
        else:  # restarting, or dead before the gcs kept where: its creation task's record
            where = await _last_worker(gcs, TaskID.for_actor_creation(info.actor_id).hex())
            if where is None and info.state in ("DEAD", "RESTARTING"):
                raise LogLookupError(
                    f"actor {wanted} ({info.state}): no record says where it ran (its worker's last "
                    "events may have died with it, or been evicted from the task-event store)"
                )
            if where is None:
                raise LogLookupError(f"actor {wanted} ({info.state}) has not started on a node yet")
            node_id, worker_id = where
        node = _node(await live_nodes(gcs), node_id, f"actor {wanted}")
        return LogTarget(node, _worker_file(worker_id, err))
    raise LogLookupError(f"no actor with id {wanted} in this cluster")


async def _last_worker(gcs: Caller, task_id: str) -> tuple[str, str] | None:
    """(node id, worker id) of the latest attempt of a task that reached a worker."""
    listing: m.TaskListing = await gcs.call(m.ListTasks([["task_id", "=", task_id]], 10_000, False))
    ran = [r for r in listing.records if r.get("worker_id") and r.get("node_id")]
    if not ran:
        return None
    last = max(ran, key=lambda r: int(r.get("attempt_number") or 0))
    return str(last["node_id"]), str(last["worker_id"])


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
    """The node holding the file named exactly ``filename`` (no pattern): the one given,
    else the head when it has one (as in Ray; it is asked alone first), else the only
    node that has it."""
    _check(filename)
    nodes = pick_nodes(await live_nodes(gcs), node_id, node_ip)
    exact = globbing.escape(filename)  # `[`, `*` and `?` in a name are themselves
    heads = [s for s in nodes if s.info.is_head]
    for info, listing in await _listings(heads, exact, token, config):
        if any(row[0] == filename for row in listing.files):
            return LogTarget(info, filename)
    holders = [
        info
        for info, listing in await _listings([s for s in nodes if not s.info.is_head], exact, token, config)
        if any(row[0] == filename for row in listing.files)
    ]
    if not holders:
        where = "that node" if node_id or node_ip else "any live node"
        raise LogLookupError(f"no log file named {filename!r} on {where}")
    if len(holders) == 1:
        return LogTarget(holders[0], filename)
    nodes_named = ", ".join(info.node_id.hex() for info in holders)
    raise LogLookupError(
        f"{len(holders)} nodes have a file {filename!r} ({nodes_named}): say which with --node-id", 400
    )


async def job_target(gcs: Caller, token: bytes, config: Config, submission_id: str) -> LogTarget:
    filename = job_driver_log_name(submission_id)  # as the job supervisor writes it
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
    while a task of that name ran. Whole lines only: a partial last line waits (in
    pieces: a long line arriving in many reads is joined once)."""

    def __init__(self, task_name: str = "", label: str | None = None) -> None:
        self._task_name = task_name
        self._label = label  # the running task's name, once a marker said it
        self._partial: list[bytes] = []
        self._held = 0  # bytes in _partial

    def feed(self, data: bytes, final: bool = False) -> list[bytes]:
        cut = len(data) if final else data.rfind(b"\n") + 1
        if not cut and not final:
            if data:
                self._partial.append(data)
                self._held += len(data)
            if self._held <= log_files.MAX_PARTIAL_LINE:
                return []
            # Output that never ends a line (a progress bar redrawn with \r) goes out in
            # pieces rather than piling up here.
            data, cut = b"", 0
        whole = b"".join([*self._partial, data[:cut]])
        self._partial = [data[cut:]] if cut < len(data) else []
        self._held = len(data) - cut
        kept = []
        for line in whole.splitlines(keepends=True):
            if line.startswith(_MARKER):
                self._label = line[len(_MARKER) :].rstrip(b"\r\n").decode(errors="replace")
            elif not self._task_name or self._label == self._task_name:
                kept.append(line)
        return kept


Connect = Callable[[m.NodeInfo, bytes, Config, str], Awaitable[Connection]]


class NodeConnections:
    """Connections to node daemons, one per node, shared by the reads that use it at
    once: opened by the first, closed when the last is done."""

    def __init__(
        self,
        credential: Callable[[], tuple[bytes, Config]],
        kind: str = "cli",
        timeout: float = 30.0,
        connect: Connect | None = None,
    ) -> None:
        """``credential()``: the cluster's token and settings, read when a connection is
        opened; ``connect``: ``node_calls.connect_node`` unless given."""
        self._credential = credential
        self._kind = kind
        self._timeout = timeout
        self._connect = connect
        self._open: dict[NodeID, asyncio.Future[Connection]] = {}
        self._users: dict[NodeID, int] = {}

    @contextlib.asynccontextmanager
    async def connection(self, node: m.NodeInfo) -> AsyncIterator[Connection]:
        """The connection to ``node``; ``LogLookupError`` (503) when it cannot be reached."""
        key = node.node_id
        self._users[key] = self._users.get(key, 0) + 1
        try:
            opening = self._open.get(key)
            if opening is None or _unusable(opening):
                opening = self._open[key] = asyncio.ensure_future(self._open_one(node))
            try:
                conn = await asyncio.shield(opening)
            except UNREACHABLE as e:
                reason = str(e) or f"no answer within {self._timeout:g} s"
                raise LogLookupError(f"cannot reach node {node.node_id.hex()}: {reason}", 503) from None
            yield conn
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                _close(self._open.pop(key, None))

    async def _open_one(self, node: m.NodeInfo) -> Connection:
        token, config = self._credential()
        connect = self._connect or connect_node
        return await asyncio.wait_for(connect(node, token, config, self._kind), self._timeout)


def _unusable(opening: asyncio.Future[Connection]) -> bool:
    if not opening.done():
        return False
    return opening.cancelled() or opening.exception() is not None or opening.result().closed


def _close(opening: asyncio.Future[Connection] | None) -> None:
    if opening is None:
        return
    if not opening.done():
        opening.cancel()
    elif not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class LogReader:
    """Reads ``target`` over a node connection: its last ``lines`` lines (all of it when
    negative), then, with ``follow``, what is written after them, until ``stop`` or
    ``max_follow_s`` (by ``clock``) has passed.

    ``chunks`` yields the file's bytes, and ``Notice``s where the answer was cut or
    ended early. Before its first item, ``lines_kept`` says how many lines the answer
    holds (None for a whole file, which is not counted) and ``truncated`` whether lines
    before them were left out; a tail holds fewer lines than asked for when they do not
    fit in ``max_bytes`` (a notice says so)."""

    def __init__(
        self,
        conn: Caller,
        target: LogTarget,
        lines: int,
        follow: bool,
        timeout: float = 30.0,
        *,
        max_follow_s: float | None = None,
        max_bytes: int | None = None,
        scan_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._conn = conn
        self._target = target
        self._lines = lines
        self._follow = follow
        self._timeout = timeout
        self._max_follow_s = max_follow_s
        self._max_bytes = MAX_ANSWER_BYTES if max_bytes is None else max_bytes
        self._scan_bytes = MAX_TASK_SCAN_BYTES if scan_bytes is None else scan_bytes
        self._clock = clock
        self._sleep = sleep
        self._markers = log_files.category(target.filename) in ("worker_out", "worker_err")
        self._filter = TaskLines(target.task_name) if self._markers or target.task_name else None
        self._position = Position()
        self._cut = False  # the last forward read stopped at its budget
        self.lines_kept: int | None = None
        self.truncated = False

    def stop(self) -> None:
        """End a follow after its current read (from the reader's loop: a signal handler)."""
        self._follow = False

    async def chunks(self, idle_ticks: bool = False) -> AsyncGenerator[bytes | Notice, None]:
        """The output, chunk by chunk; with ``idle_ticks``, an empty chunk once the first
        part is read even when it is empty, and after each look of a follower that
        found nothing new (its consumer then checks its reader is still there)."""
        if self._target.task_name:
            first = self._task_lines()
        elif self._lines >= 0:
            first = self._tail()
        else:
            first = self._whole()
        said = False
        async with contextlib.aclosing(first) as parts:
            async for part in parts:
                said = True
                yield part
        if idle_ticks and not said:
            yield b""
        deadline = None if self._max_follow_s is None else self._clock() + self._max_follow_s
        while self._follow:
            if deadline is not None and self._clock() >= deadline:
                yield Notice(
                    f"the follow ended after {self._max_follow_s:g} s, the longest one request "
                    "follows a file: ask again to go on"
                )
                break
            data, self._position = await self._read(self._target.filename, self._position, READ_BYTES)
            kept = self._kept(data) if data else b""
            if kept or idle_ticks:
                yield kept
            if not data:
                await self._sleep(FOLLOW_INTERVAL_S)
        if self._filter is not None and (rest := self._kept(b"", final=True)):
            yield rest

    # -- the three first parts -------------------------------------------------------------
    async def _tail(self) -> AsyncGenerator[bytes | Notice, None]:
        """The last lines: the node's tail, then, when more lines were asked for than one
        read holds, earlier ranges counted backward here and sent forward again."""
        name = self._target.filename
        chunk = await self._call(m.ReadLogFile(name, self._lines, 0, 0, READ_BYTES))
        data, end = bytes(chunk.data), Position(chunk.inode, chunk.offset)
        first = end.offset - len(data)
        finder = log_files.TailFinder(end.offset, self._lines, _MARKER if self._markers else b"")
        finder.add(data, starts_a_line=True)  # a tail holds whole lines only
        moved = False
        while chunk.truncated and finder.kept < self._lines and 0 < finder.start:
            step = min(READ_BYTES, finder.start, self._max_bytes - (end.offset - finder.start))
            if step <= 0:
                break
            block, after = await self._read(name, Position(end.inode, finder.start - step), step)
            if after != Position(end.inode, finder.start) or len(block) != step:
                moved = True  # the file was rotated away, or cut, meanwhile
                break
            finder.add(block)
        self.lines_kept, self.truncated = finder.kept, finder.begin > 0
        position = Position(end.inode, finder.begin)
        while position.offset < first and not moved:
            block, after = await self._read(name, position, min(READ_BYTES, first - position.offset))
            if not block or after.inode != end.inode:
                moved = True
                break
            if kept := self._kept(block):
                yield kept
            position = after
        if not moved and (kept := self._kept(data)):
            yield kept
        self._position = end
        if moved:
            yield Notice(f"{name} was rotated or cut while it was read: lines may be missing")
        elif finder.kept < self._lines and finder.begin > 0:
            yield Notice(
                f"only the last {finder.kept} lines fit in one answer ({self._max_bytes:,} bytes); "
                "the file has more"
            )

    async def _whole(self) -> AsyncGenerator[bytes | Notice, None]:
        """The whole file as it was when asked for (what is written meanwhile is left
        to a follower), at most ``max_bytes``."""
        end = await self._end()
        async for data in self._forward(self._target.filename, Position(end.inode, 0), end, self._max_bytes):
            if kept := self._kept(data):
                yield kept
        if self._cut:
            follow = "; following on from its end" if self._follow else ""
            yield Notice(
                f"cut after {self._max_bytes:,} bytes, the most one answer holds{follow}: "
                "ask for its last lines (lines=N, --tail N) to see its end"
            )

    async def _task_lines(self) -> AsyncGenerator[bytes | Notice, None]:
        """The task's last lines, found by reading its worker's output from as far back
        as ``scan_bytes`` allows, each line labelled by the marker above it."""
        assert self._filter is not None
        end = await self._end()
        name, start, skipped = await self._task_start(end)
        kept: deque[bytes] = deque()
        size, over_count, over_bytes = 0, False, False
        async for data in self._forward(name, start, end, self._scan_bytes):
            for line in self._filter.feed(data):
                kept.append(line)
                size += len(line)
                while kept and (0 <= self._lines < len(kept) or size > self._max_bytes):
                    over_count = over_count or 0 <= self._lines < len(kept)
                    over_bytes = over_bytes or not 0 <= self._lines < len(kept)
                    size -= len(kept.popleft())
        self.lines_kept, self.truncated = len(kept), over_count or over_bytes or skipped or self._cut
        while kept:
            batch, batch_size = [], 0
            while kept and batch_size < READ_BYTES:
                batch.append(kept.popleft())
                batch_size += len(batch[-1])
            yield b"".join(batch)
        if skipped or self._cut:
            yield Notice(
                f"only the last {self._scan_bytes:,} bytes of the worker's output were searched "
                "for the task's lines: earlier ones are left out"
            )
        if over_bytes:
            yield Notice(f"only the task's last lines that fit in one answer ({self._max_bytes:,} bytes)")

    # -- reading ranges --------------------------------------------------------------------
    async def _forward(
        self, name: str, position: Position, stop: Position, budget: int
    ) -> AsyncGenerator[bytes, None]:
        """The bytes from ``position`` in ``name`` (on across rotations) to ``stop``, at
        most ``budget`` of them: then ``_cut`` is set, and a follower goes on at ``stop``."""
        self._cut = False
        read = 0
        while not (position.inode == stop.inode and position.offset >= stop.offset):
            if read >= budget:
                self._cut, position = True, stop
                break
            want = min(READ_BYTES, budget - read)
            if position.inode == stop.inode:
                want = min(want, stop.offset - position.offset)
            data, after = await self._read(name, position, want)
            if not data:
                break  # the file went, or was cut shorter
            # The first read may be of a rotated copy by its name; from there on by inode.
            name = self._target.filename
            read += len(data)
            passed = position.inode == stop.inode != after.inode  # rotated: the rest is newer
            position = after
            yield data
            if passed:
                break
        self._position = position

    async def _task_start(self, end: Position) -> tuple[str, Position, bool]:
        """Where a task's lines are looked for from: the oldest rotated copy of the file
        that keeps the search within ``scan_bytes`` (else the current file's last bytes),
        and whether anything older was left out."""
        name = self._target.filename
        listing = await asyncio.wait_for(
            self._conn.call(m.ListLogFiles(globbing.escape(name) + ".*")), self._timeout
        )
        copies = sorted(
            (int(row[0][len(name) + 1 :]), int(row[1]))
            for row in listing.files
            if row[0].startswith(name + ".") and row[0][len(name) + 1 :].isdigit()
        )
        total, oldest = end.offset, 0
        for number, size in copies:  # the newest copy (.1) first
            if total + size > self._scan_bytes:
                break
            total, oldest = total + size, number
        if oldest:
            return f"{name}.{oldest}", Position(), oldest != copies[-1][0]
        offset = max(0, end.offset - self._scan_bytes)
        return name, Position(end.inode, offset), offset > 0 or bool(copies)

    async def _end(self) -> Position:
        """Where the file ends now (a tail of no lines)."""
        chunk = await self._call(m.ReadLogFile(self._target.filename, 0, 0, 0, 1))
        return Position(chunk.inode, chunk.offset)

    async def _read(self, name: str, position: Position, max_bytes: int) -> tuple[bytes, Position]:
        chunk = await self._call(m.ReadLogFile(name, -1, position.inode, position.offset, max_bytes))
        return bytes(chunk.data), Position(chunk.inode, chunk.offset)

    async def _call(self, msg: m.ReadLogFile) -> m.LogFileChunk:
        chunk: m.LogFileChunk = await asyncio.wait_for(self._conn.call(msg), self._timeout)
        if chunk.status:
            raise LogLookupError(f"node {self._target.node.node_id.hex()[:12]}: {chunk.error}", chunk.status)
        return chunk

    def _kept(self, data: bytes, final: bool = False) -> bytes:
        return data if self._filter is None else b"".join(self._filter.feed(data, final))
