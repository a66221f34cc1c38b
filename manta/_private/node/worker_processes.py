"""The node's worker processes: forked by the worker template (a fork server the node
starts), asked to exit and killed when they do not, and their ends explained.

``explain_exit`` decides (pure) what a worker's end was: its reason as owners and the gcs
are told it, whether the memory monitor caused it, and whether its job's driver must hear
of it. ``WorkerProcesses`` is the I/O around it: the template, signals, exit reports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.ids import JobID, WorkerID
from manta._private.common.session import log_paths, remove_worker_socket, worker_log_name
from manta._private.node.scheduler import BROKEN_LEASE_REASON
from manta._private.node.template_launch import Launched, launch_template
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection

logger = logging.getLogger(__name__)

# Exit reports kept for workers that ended (owners ask within seconds).
EXIT_REPORTS_KEPT = 1000
# How long a worker asked to exit has before it is killed.
EXIT_GRACE_S = 2.0


@dataclass(slots=True)
class WorkerProc:
    worker_id: WorkerID
    pid: int = 0
    conn: Connection | None = None
    kill_reason: str = ""
    # Set when the memory monitor kills it: the owner's whole message.
    oom_message: str = ""
    # The job whose work it runs, from a grant until its lease goes back unbroken.
    running_job: JobID | None = None
    exit: m.WorkerExit | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    # Epoch seconds: asked for, running, ended (for the state API's worker listing).
    launch_time: float = 0.0
    start_time: float = 0.0
    end_time: float = 0.0


@dataclass(frozen=True, slots=True)
class ExitExplained:
    exit: m.WorkerExit
    # Ended by neither the node nor its own choice, under a job's work: its driver hears.
    tell_driver: bool


# A worker listing row: [worker_id hex, is_driver, alive, pid, exit_type, exit_detail,
# launch ms, start ms, end ms] (times 0 when unknown).
WORKER_ROW = ("worker_id", "is_driver", "alive", "pid", "exit_type", "exit_detail", "launch", "start", "end")


def worker_row(proc: WorkerProc) -> list[Any]:
    """How the state API lists a worker: running, or how it ended (Ray's exit types)."""
    exit_type = None
    if proc.exit is not None:
        if proc.exit.out_of_memory:
            exit_type = "NODE_OUT_OF_MEMORY"
        elif proc.exit.exit_code == 0 or (proc.kill_reason and proc.exit.signal == signal.SIGKILL):
            exit_type = "INTENDED_SYSTEM_EXIT"
        else:
            exit_type = "SYSTEM_ERROR"
    return [
        proc.worker_id.hex(),
        False,
        proc.exit is None,
        proc.pid,
        exit_type,
        proc.exit.reason if proc.exit is not None else "",
        int(proc.launch_time * 1000),
        int(proc.start_time * 1000),
        int(proc.end_time * 1000),
    ]


def explain_exit(proc: WorkerProc, msg: m.ChildExited) -> ExitExplained:
    if msg.signal is not None:
        try:
            name = signal.Signals(msg.signal).name
        except ValueError:
            name = str(msg.signal)
        how = f"killed by signal {msg.signal} ({name})"
    else:
        how = f"exited with code {msg.exit_code}"
    reason = f"the worker process {how}"
    # Our stop shows as SIGKILL or a clean exit (ExitWorker); any other end is its own.
    ours = msg.signal == signal.SIGKILL or msg.exit_code == 0
    out_of_memory = bool(proc.oom_message) and msg.signal == signal.SIGKILL
    if out_of_memory:
        reason = proc.oom_message
    elif proc.kill_reason and ours:
        reason += f"; the node daemon had stopped it: {proc.kill_reason}"
    elif msg.signal == signal.SIGKILL:
        reason += " (by something outside Manta, e.g. the kernel's OOM killer)"
    # (An owner that returns a broken worker's lease asks for a kill too, often after the
    # worker has died on its own: that kill is not why it ended.)
    ended_by_us = msg.signal == signal.SIGKILL and bool(
        proc.oom_message or (proc.kill_reason and proc.kill_reason != BROKEN_LEASE_REASON)
    )
    exit_ = m.WorkerExit(proc.worker_id, msg.pid, msg.exit_code, msg.signal, reason, out_of_memory)
    return ExitExplained(exit_, msg.exit_code != 0 and not ended_by_us and proc.running_job is not None)


def died_text(proc: WorkerProc, pid: int, reason: str) -> str:
    """What a job's driver is told of a worker that died under its work (Ray's words)."""
    return (
        "A worker died or was killed while executing a task by an unexpected system error: "
        f"{reason.rstrip('.')}. Worker ID: {proc.worker_id.hex()}, pid: {pid}. Its task is retried "
        "if it has retries left; the worker's log is in the session's logs directory."
    )


class WorkerProcesses:
    def __init__(
        self,
        session_dir: str,
        on_started: Callable[[WorkerID, int], None],
        on_exit: Callable[[WorkerProc, ExitExplained], None],
        on_template_lost: Callable[[], None],
        launched: Launched | None = None,
    ) -> None:
        self._session_dir = session_dir
        self._on_started = on_started
        self._on_exit = on_exit
        self._on_template_lost = on_template_lost
        self.procs: dict[WorkerID, WorkerProc] = {}
        self._by_pid: dict[int, WorkerProc] = {}
        self._ended: deque[WorkerID] = deque()
        self._fork_writer: asyncio.Transport | None = None
        # A template the node started before it was set up (see template_launch).
        self._launched = launched
        self._template: subprocess.Popen[bytes] | None = launched[0] if launched else None
        self.stopping = False

    async def start_template(self, worker_params: dict[str, Any]) -> None:
        """Start the worker template (unless it was launched early) and send it the
        settings its workers start with."""
        proc, sock = self._launched or launch_template(self._session_dir)
        self._launched = None
        self._template = proc
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(lambda: _TemplateProtocol(self), sock=sock)
        self._fork_writer = transport  # type: ignore[assignment]
        self._write(m.TemplateParams(worker_params))

    def fork(self, worker_id: WorkerID) -> None:
        out, err = log_paths(self._session_dir, worker_log_name(worker_id.hex()))
        self.procs[worker_id] = WorkerProc(worker_id, launch_time=time.time())
        self._write(m.ForkWorker(worker_id, {}, out, err))

    def _write(self, msg: Any) -> None:
        payload = codec.encode(msg)
        assert self._fork_writer is not None
        self._fork_writer.write(len(payload).to_bytes(4, "big") + payload)

    def forked(self, msg: m.Forked) -> None:
        proc = self.procs.get(msg.worker_id)
        if proc is None:
            _kill(msg.pid, signal.SIGKILL)
            return
        proc.pid = msg.pid
        proc.start_time = time.time()
        self._by_pid[msg.pid] = proc
        self._on_started(msg.worker_id, msg.pid)

    def fork_failed(self, msg: m.ForkFailed) -> None:
        proc = self.procs.get(msg.worker_id)
        if proc is not None and proc.exit is None and not proc.pid:
            reason = f"the worker process could not be started: {msg.error}"
            self._ended_with(
                proc, ExitExplained(m.WorkerExit(proc.worker_id, 0, None, None, reason, False), False)
            )

    def child_exited(self, msg: m.ChildExited) -> None:
        proc = self._by_pid.pop(msg.pid, None)
        if proc is None:
            return
        self._ended_with(proc, explain_exit(proc, msg))

    def _ended_with(self, proc: WorkerProc, explained: ExitExplained) -> None:
        proc.exit = explained.exit
        proc.end_time = time.time()
        proc.exited.set()
        remove_worker_socket(self._session_dir, proc.worker_id.hex())
        self._ended.append(proc.worker_id)
        while len(self._ended) > EXIT_REPORTS_KEPT:
            self.procs.pop(self._ended.popleft(), None)
        self._on_exit(proc, explained)

    def stop(self, worker_id: WorkerID, reason: str) -> None:
        """Ask the worker to exit; kill it if it has not within the grace time."""
        proc = self.procs.get(worker_id)
        if proc is None or proc.exit is not None:
            return
        if proc.conn is not None and proc.conn.closed:
            # It is already going (it dropped its connection): not our doing, so no reason
            # of ours goes into its exit report. Make sure it does go.
            self.kill_later(proc, 1.0)
            return
        # A reason given first (the gcs killing an actor's worker says why, then returns its
        # lease as broken) is the one that explains the exit.
        proc.kill_reason = proc.kill_reason or reason
        if proc.conn is not None:
            proc.conn.notify(m.ExitWorker(reason))
            self.kill_later(proc, EXIT_GRACE_S)
        else:
            self.force_kill(proc)

    async def reap(self, worker_id: WorkerID, reason: str) -> bool:
        """Ask an idle worker to exit; whether it agreed (it may have taken work meanwhile)."""
        proc = self.procs.get(worker_id)
        agreed = False
        if proc is not None and proc.conn is not None and not proc.conn.closed:
            try:
                agreed = bool(await asyncio.wait_for(proc.conn.call(m.ExitWorker(reason, True)), 5.0))
            except Exception:
                agreed = True  # gone or unresponsive: it goes either way
        if agreed and proc is not None:
            proc.kill_reason = reason
            self.kill_later(proc, EXIT_GRACE_S)
        return agreed

    def kill(self, worker_id: WorkerID, reason: str, oom_message: str = "") -> bool:
        """Kill the worker now; False when there is no such live process."""
        proc = self.procs.get(worker_id)
        if proc is None or not proc.pid or proc.exit is not None:
            return False
        proc.kill_reason = reason
        if oom_message:
            proc.oom_message = oom_message
        _kill(proc.pid, signal.SIGKILL)
        return True

    def kill_later(self, proc: WorkerProc, delay_s: float) -> None:
        asyncio.get_running_loop().call_later(delay_s, self.force_kill, proc)

    def force_kill(self, proc: WorkerProc) -> None:
        if proc.pid and proc.exit is None:
            _kill(proc.pid, signal.SIGKILL)

    async def exit_report(self, worker_id: WorkerID) -> m.WorkerExit | None:
        """How the worker ended (waiting up to a second for an end just happening)."""
        proc = self.procs.get(worker_id)
        if proc is None:
            return None
        if proc.exit is None:
            try:
                await asyncio.wait_for(proc.exited.wait(), 1.0)
            except asyncio.TimeoutError:
                return None
        return proc.exit

    def template_lost(self) -> None:
        """The worker template exited on its own: no worker can be started any more."""
        self._on_template_lost()

    def stop_all(self) -> None:
        """The node is stopping: every worker and the template go at once."""
        self.stopping = True
        for proc in list(self.procs.values()):
            if proc.pid and proc.exit is None:  # (an exited worker's pid may be another's now)
                _kill(proc.pid, signal.SIGKILL)
            remove_worker_socket(self._session_dir, proc.worker_id.hex())
        if self._template is not None:
            self._template.kill()
            try:
                self._template.wait(2)
            except subprocess.TimeoutExpired:
                pass


class _TemplateProtocol(asyncio.Protocol):
    """Frames from the worker template: ``Forked`` and ``ChildExited``."""

    def __init__(self, workers: WorkerProcesses) -> None:
        self._workers = workers
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 4:
            size = int.from_bytes(self._buf[:4], "big")
            if len(self._buf) < 4 + size:
                return
            msg = codec.decode(bytes(self._buf[4 : 4 + size]))
            del self._buf[: 4 + size]
            if isinstance(msg, m.Forked):
                self._workers.forked(msg)
            elif isinstance(msg, m.ChildExited):
                self._workers.child_exited(msg)
            elif isinstance(msg, m.ForkFailed):
                self._workers.fork_failed(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._workers.stopping:
            self._workers.template_lost()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # gone (a pid taken since by another user's process is not ours to signal)
