"""How a worker's end is explained (pure): the reason owners and the gcs are told, whether
the memory monitor caused it, and whether its job's driver must hear of it; and which
processes a stopping node kills."""

from __future__ import annotations

import signal
import subprocess

from manta._private.common.ids import JobID, WorkerID
from manta._private.node.scheduler import BROKEN_LEASE_REASON
from manta._private.node.worker_processes import WorkerProc, WorkerProcesses, explain_exit
from manta._private.rpc import messages as m

JOB = JobID.from_int(7)


def proc(**kwargs: object) -> WorkerProc:
    return WorkerProc(WorkerID.from_random(), pid=42, running_job=JOB, **kwargs)  # type: ignore[arg-type]


def ended(exit_code: int = 0, sig: int | None = None) -> m.ChildExited:
    return m.ChildExited(42, exit_code, sig)


def test_a_crash_under_a_task_is_told_to_the_driver() -> None:
    explained = explain_exit(proc(), ended(exit_code=1))
    assert explained.exit.reason == "the worker process exited with code 1"
    assert explained.tell_driver and not explained.exit.out_of_memory


def test_a_kill_from_outside_is_named_and_told() -> None:
    explained = explain_exit(proc(), ended(exit_code=-9, sig=signal.SIGKILL))
    assert "(by something outside Manta, e.g. the kernel's OOM killer)" in explained.exit.reason
    assert explained.tell_driver


def test_the_nodes_own_stops_are_explained_and_not_told() -> None:
    stopped = explain_exit(proc(kill_reason="its actor was killed"), ended(exit_code=-9, sig=signal.SIGKILL))
    assert stopped.exit.reason.endswith("; the node daemon had stopped it: its actor was killed")
    assert not stopped.tell_driver
    clean = explain_exit(proc(kill_reason="idle"), ended(exit_code=0))
    assert not clean.tell_driver and "had stopped it: idle" in clean.exit.reason


def test_the_memory_monitor_gives_the_whole_reason() -> None:
    explained = explain_exit(
        proc(kill_reason="low memory", oom_message="Task was killed due to the node running low on memory."),
        ended(exit_code=-9, sig=signal.SIGKILL),
    )
    assert explained.exit.out_of_memory and explained.exit.reason.startswith("Task was killed")
    assert not explained.tell_driver


def test_a_broken_lease_kill_does_not_hide_a_crash() -> None:
    # An owner returns a broken worker's lease (and asks for a kill) often after the worker
    # died on its own: the driver still hears of the death.
    explained = explain_exit(proc(kill_reason=BROKEN_LEASE_REASON), ended(exit_code=-9, sig=signal.SIGKILL))
    assert explained.tell_driver


def test_idle_workers_ending_are_nobodys_business() -> None:
    assert not explain_exit(WorkerProc(WorkerID.from_random(), pid=42), ended(exit_code=1)).tell_driver


def test_a_stopping_node_kills_its_live_workers_and_not_the_pids_of_ended_ones(tmp_path) -> None:
    # An ended worker's record is kept for its exit report; its pid may belong to another
    # process by now, which the node must leave alone.
    live, unrelated = subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    try:
        workers = WorkerProcesses(str(tmp_path), lambda *a: None, lambda *a: None, lambda: None)
        running = WorkerProc(WorkerID.from_random(), pid=live.pid)
        gone = WorkerProc(WorkerID.from_random(), pid=unrelated.pid)
        gone.exit = m.WorkerExit(gone.worker_id, unrelated.pid, 0, None, "exited", False)
        workers.procs.update({running.worker_id: running, gone.worker_id: gone})
        workers.stop_all()
        assert live.wait(5) == -signal.SIGKILL
        assert unrelated.poll() is None
    finally:
        for process in (live, unrelated):
            process.kill()
            process.wait()


def test_a_fork_that_failed_ends_that_worker_with_the_reason(tmp_path) -> None:
    ended: list[tuple[WorkerProc, object]] = []
    workers = WorkerProcesses(str(tmp_path), lambda *a: None, lambda p, e: ended.append((p, e)), lambda: None)
    starting = WorkerProc(WorkerID.from_random())
    workers.procs[starting.worker_id] = starting
    workers.fork_failed(m.ForkFailed(starting.worker_id, "[Errno 11] Resource temporarily unavailable"))
    [(proc, explained)] = ended
    assert proc is starting and starting.exit is not None and starting.exited.is_set()
    assert (
        starting.exit.reason
        == "the worker process could not be started: [Errno 11] Resource temporarily unavailable"
    )
    assert not explained.tell_driver  # no job's work was lost: the scheduler says why, once starts fail
    workers.fork_failed(m.ForkFailed(starting.worker_id, "again"))  # told twice: ended once
    assert len(ended) == 1
