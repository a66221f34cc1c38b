"""The node memory monitor: when the node is nearly out of memory, which worker to kill.

When a node runs out of memory the kernel's OOM killer picks a victim by its own measure:
often the biggest process, which may be the node daemon, the object store's mapping holder
or a long-lived actor, and nobody is told why. The node daemon acts first instead: once the
memory in use reaches ``memory_usage_threshold`` of the node's memory, it kills one worker
that runs *work that can be redone*, and records why, so that the task's owner retries it or
fails it with ``OutOfMemoryError`` saying what happened.

Which worker (Ray's "group by owner" policy, in our own terms):

1. task workers whose work is retriable (or not known not to be), then task workers whose
   work is not, and actor workers last: an actor's state is lost with its process;
2. among those, the owner with the most workers here loses one: an owner fanning out many
   tasks gives one back, while owners running a single task keep making progress;
3. in that owner's group, the newest lease: the least work is lost.

One kill at a time: after a kill nothing else is chosen until the victim's exit is seen (or
``exit_wait_s`` passed: a process stuck in the kernel will not free memory sooner by killing
more) and ``min_kill_interval_s`` has gone by, so the memory it freed shows in the next
reading before another worker is judged. A worker is chosen at most once.

Decisions are pure (``MemoryMonitor``: readings and workers in, a decision out, time from an
injected clock). The readings come from thin functions at the end of this module: the
container's cgroup (v2 or v1) when it limits memory below the host's RAM, else the host's.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import psutil

from manta._private.common.clock import Clock
from manta._private.common.ids import WorkerID

_GIB = 1024**3
# A cgroup "limit" at least this large means no limit (v1 reports ~2**63 rounded to pages).
_NO_LIMIT = 1 << 60


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    """Bytes in use (not counting reclaimable page cache) out of the bytes the node may use."""

    used: int
    total: int

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RunningWorker:
    """A worker that holds a lease: what it runs, for the choice of a victim."""

    worker_id: WorkerID
    pid: int
    # Who leased it: the task's owner, or the gcs for an actor.
    owner: Hashable
    # When its lease was granted (the injected clock's monotonic time).
    granted_at: float
    is_actor: bool
    # Whether the work can run again elsewhere; None when the node cannot know (it is then
    # treated as retriable: the owner, which knows, fails it if it is not).
    retriable: bool | None = None
    rss: int = 0


@dataclass(frozen=True, slots=True)
class KillForMemory:
    """Kill this worker now (SIGKILL: a process short of memory may not exit cleanly)."""

    worker_id: WorkerID
    pid: int
    # What the owner is told, starting "Task was killed due to the node running low on memory."
    message: str


@dataclass(frozen=True, slots=True)
class NothingToKill:
    """Over the threshold, but no worker here runs work that could be killed: say so."""

    message: str


Decision = KillForMemory | NothingToKill | None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    threshold: float
    # Least time between two kills, so that the memory the first freed is seen first.
    min_kill_interval_s: float = 1.0
    # How long to wait for a victim's exit before judging others again.
    exit_wait_s: float = 5.0
    # How often "nothing to kill" is said while it lasts.
    warn_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class MonitorStats:
    kills: int
    last_used: int
    last_total: int
    threshold: float


@dataclass
class MemoryMonitor:
    config: MonitorConfig
    clock: Clock
    # How the node is named in messages: its id (short) and host.
    node: str
    kills: int = 0
    _last_kill: float | None = None
    # Victims whose exit has not been seen yet, with when each was chosen.
    _in_flight: dict[WorkerID, float] = field(default_factory=dict)
    # Victims whose exit was seen (most recent kept): a worker is chosen once, ever.
    _chosen: dict[WorkerID, None] = field(default_factory=dict)
    _last_warned: float | None = None
    _last_usage: MemoryUsage = MemoryUsage(0, 0)

    def over_threshold(self, usage: MemoryUsage) -> bool:
        return usage.total > 0 and usage.fraction >= self.config.threshold

    def decide(self, usage: MemoryUsage, workers: Iterable[RunningWorker]) -> Decision:
        """The decision for one reading of the node's memory. ``workers`` (those holding a
        lease) is only iterated when a victim is to be chosen: it may be a lazy generator
        that reads each worker's RSS."""
        self._last_usage = usage
        if not self.over_threshold(usage):
            return None
        now = self.clock.monotonic()
        if self._last_kill is not None and now - self._last_kill < self.config.min_kill_interval_s:
            return None
        if any(now - chosen_at < self.config.exit_wait_s for chosen_at in self._in_flight.values()):
            return None  # the last victim's memory is not back yet
        candidates = [
            w for w in workers if w.worker_id not in self._in_flight and w.worker_id not in self._chosen
        ]
        if not candidates:
            if self._last_warned is not None and now - self._last_warned < self.config.warn_interval_s:
                return None
            self._last_warned = now
            return NothingToKill(self._nothing_message(usage))
        victim = choose_victim(candidates)
        self._last_kill = now
        self._in_flight[victim.worker_id] = now
        self.kills += 1
        return KillForMemory(victim.worker_id, victim.pid, self.oom_message(usage, victim))

    def worker_exited(self, worker_id: WorkerID) -> None:
        """A worker's process is gone (a victim, or any other)."""
        if self._in_flight.pop(worker_id, None) is not None:
            self._chosen[worker_id] = None
            while len(self._chosen) > 10_000:  # gone workers never come back: keep recent ones
                del self._chosen[next(iter(self._chosen))]

    def statistics(self) -> MonitorStats:
        u = self._last_usage
        return MonitorStats(self.kills, u.used, u.total, self.config.threshold)

    # -- what people are told --------------------------------------------------------------
    def oom_message(self, usage: MemoryUsage, victim: RunningWorker) -> str:
        what = "an actor's worker" if victim.is_actor else "the worker running it"
        rss = f", {_gib(victim.rss)} resident" if victim.rss else ""
        return (
            "Task was killed due to the node running low on memory. "
            f"Node {self.node} was using {_gib(usage.used)} of its {_gib(usage.total)} "
            f"({usage.fraction:.1%}), at or above the memory monitor's threshold of "
            f"{self.config.threshold:.1%}, so its node daemon killed {what} (pid {victim.pid}{rss}) "
            "before the operating system's OOM killer would pick a process at random. "
            "To avoid this: run fewer of these tasks at once on a node, by asking for more "
            "num_cpus or for a `memory` resource per task (e.g. .options(memory=2 * 1024**3)); "
            "or raise the threshold with MANTA_MEMORY_USAGE_THRESHOLD (at most 1; "
            "MANTA_MEMORY_MONITOR_REFRESH_MS=0 turns the monitor off); or use nodes with more memory."
        )

    def _nothing_message(self, usage: MemoryUsage) -> str:
        return (
            f"Node {self.node} is using {_gib(usage.used)} of its {_gib(usage.total)} "
            f"({usage.fraction:.1%}), above the memory monitor's threshold of "
            f"{self.config.threshold:.1%}, but none of its workers runs a task or actor that could "
            "be killed to free memory: the memory is held elsewhere (drivers, idle workers, other "
            "programs on the host)."
        )


def choose_victim(candidates: list[RunningWorker]) -> RunningWorker:
    """The worker to kill among ``candidates`` (not empty); see the module docstring."""
    tier = min(_tier(w) for w in candidates)
    pool = [w for w in candidates if _tier(w) == tier]
    groups: dict[Hashable, list[RunningWorker]] = {}
    for worker in pool:
        groups.setdefault(worker.owner, []).append(worker)
    # The biggest group; between equals, the one with the newest lease.
    group = max(groups.values(), key=lambda g: (len(g), max(w.granted_at for w in g)))
    # Newest lease first; then the biggest; then any, but always the same one.
    return max(group, key=lambda w: (w.granted_at, w.rss, bytes(w.worker_id)))


def _tier(worker: RunningWorker) -> int:
    if worker.is_actor:
        return 2
    return 1 if worker.retriable is False else 0


def _gib(size: int) -> str:
    return f"{size / _GIB:.2f} GiB"


# -- readings (parsing is pure; the reading functions are the thin I/O edge) -----------------


def parse_cgroup_v2(max_text: str, current_text: str, stat_text: str) -> MemoryUsage | None:
    """Usage from cgroup v2's memory.max, memory.current and memory.stat; None: no limit."""
    limit = max_text.strip()
    if limit == "max" or not limit:
        return None
    total = int(limit)
    if total >= _NO_LIMIT:
        return None
    used = int(current_text.strip()) - _stat_value(stat_text, "inactive_file")
    return MemoryUsage(max(used, 0), total)


def parse_cgroup_v1(limit_text: str, usage_text: str, stat_text: str) -> MemoryUsage | None:
    """Usage from cgroup v1's memory.limit_in_bytes, memory.usage_in_bytes and memory.stat."""
    total = int(limit_text.strip())
    if total >= _NO_LIMIT:
        return None
    used = int(usage_text.strip()) - _stat_value(stat_text, "total_inactive_file")
    return MemoryUsage(max(used, 0), total)


def _stat_value(stat_text: str, key: str) -> int:
    for line in stat_text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def cgroup_dirs(proc_cgroup: str, root: str) -> list[tuple[str, int]]:
    """The cgroup directories that may hold this process's memory limit, as (path, version):
    its own cgroup's, then the hierarchy's root (inside a container with its own cgroup
    namespace, the root is the container's cgroup)."""
    found: list[tuple[str, int]] = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        if controllers == "":
            found.append((os.path.join(root, path.lstrip("/")), 2))
        elif "memory" in controllers.split(","):
            found.append((os.path.join(root, "memory", path.lstrip("/")), 1))
    found += [(root, 2), (os.path.join(root, "memory"), 1)]
    unique: dict[tuple[str, int], None] = dict.fromkeys((os.path.normpath(p), v) for p, v in found)
    return list(unique)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def read_cgroup_usage(dirs: list[tuple[str, int]]) -> MemoryUsage | None:
    """The first limited cgroup among ``dirs``; None where none limits memory."""
    for path, version in dirs:
        limit_file, usage_file, parse = (
            ("memory.max", "memory.current", parse_cgroup_v2)
            if version == 2
            else ("memory.limit_in_bytes", "memory.usage_in_bytes", parse_cgroup_v1)
        )
        try:
            limit = _read(os.path.join(path, limit_file))
            if parse(limit, "0", "") is None:
                continue  # unlimited: its usage need not be read
            usage = parse(
                limit, _read(os.path.join(path, usage_file)), _read(os.path.join(path, "memory.stat"))
            )
        except (OSError, ValueError):
            continue
        if usage is not None:
            return usage
    return None


class MemoryReader:
    """Reads the node's memory usage: its cgroup's when that limits it below the host's RAM,
    else the host's (total less what the kernel could make available)."""

    def __init__(self, cgroup_root: str = "/sys/fs/cgroup") -> None:
        try:
            proc_cgroup = _read("/proc/self/cgroup")
        except OSError:
            proc_cgroup = ""
        self._dirs = cgroup_dirs(proc_cgroup, cgroup_root)

    def read(self) -> MemoryUsage:
        host = psutil.virtual_memory()
        usage = MemoryUsage(host.total - host.available, host.total)
        limited = read_cgroup_usage(self._dirs)
        if limited is not None and limited.total < usage.total:
            return limited
        return usage


def process_rss(pid: int) -> int:
    """A process's resident memory in bytes; 0 when it cannot be read (it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return 0
