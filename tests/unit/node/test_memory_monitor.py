"""The node memory monitor's policy: readings and workers in, a decision out, a fake clock."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.clock import FakeClock
from manta._private.common.ids import WorkerID
from manta._private.node.memory_monitor import (
    KillForMemory,
    MemoryMonitor,
    MemoryUsage,
    MonitorConfig,
    NothingToKill,
    RunningWorker,
    cgroup_dirs,
    choose_victim,
    parse_cgroup_v1,
    parse_cgroup_v2,
    read_cgroup_usage,
)

GIB = 1024**3
FULL = MemoryUsage(96 * GIB // 10, 10 * GIB)  # 96%
CALM = MemoryUsage(5 * GIB, 10 * GIB)


def wid(n: int) -> WorkerID:
    return WorkerID(n.to_bytes(WorkerID.SIZE, "big"))


def monitor(threshold: float = 0.95, **config: float) -> tuple[MemoryMonitor, FakeClock]:
    clock = FakeClock()
    return MemoryMonitor(MonitorConfig(threshold, **config), clock, "abcd1234 (10.0.0.7)"), clock


def worker(
    n: int,
    *,
    owner: str = "o1",
    at: float = 0.0,
    actor: bool = False,
    retriable: bool | None = None,
    rss: int = 0,
) -> RunningWorker:
    return RunningWorker(wid(n), 1000 + n, owner, at, actor, retriable, rss)


def test_nothing_happens_under_the_threshold() -> None:
    mon, _clock = monitor()
    assert not mon.over_threshold(CALM)
    assert mon.decide(CALM, [worker(1)]) is None
    assert mon.decide(MemoryUsage(0, 0), [worker(1)]) is None  # no reading: no decision


def test_workers_are_only_looked_at_when_one_is_to_be_chosen() -> None:
    def untouchable():
        raise AssertionError("the workers (and their RSS) were read for nothing")
        yield worker(1)

    mon, clock = monitor(min_kill_interval_s=1.0)
    assert mon.decide(CALM, untouchable()) is None
    assert isinstance(mon.decide(FULL, iter([worker(1)])), KillForMemory)
    mon.worker_exited(wid(1))
    clock.advance(0.5)
    assert mon.decide(FULL, untouchable()) is None  # too soon after the last kill
    assert mon.statistics().last_used == FULL.used


def test_the_newest_lease_is_killed_and_the_message_says_why() -> None:
    mon, _clock = monitor()
    decision = mon.decide(FULL, [worker(1, at=1.0), worker(2, at=3.0, rss=GIB), worker(3, at=2.0)])
    assert isinstance(decision, KillForMemory)
    assert (decision.worker_id, decision.pid) == (wid(2), 1002)
    text = decision.message
    assert text.startswith("Task was killed due to the node running low on memory.")
    for part in ("abcd1234 (10.0.0.7)", "pid 1002", "9.60 GiB", "10.00 GiB", "95.0%", "96.0%", "1.00 GiB"):
        assert part in text
    for advice in ("num_cpus", "memory", "MANTA_MEMORY_USAGE_THRESHOLD", "more memory"):
        assert advice in text
    assert mon.statistics().kills == 1


def test_task_workers_go_before_actor_workers_and_retriable_before_not() -> None:
    mon, _ = monitor()
    actor = worker(1, owner="gcs", at=9.0, actor=True)
    fixed = worker(2, at=8.0, retriable=False)
    task = worker(3, at=1.0)
    assert choose_victim([actor, fixed, task]) == task
    assert choose_victim([actor, fixed]) == fixed
    assert choose_victim([actor]) == actor
    decision = mon.decide(FULL, [actor])
    assert isinstance(decision, KillForMemory)
    assert "an actor's worker" in decision.message


def test_the_owner_with_most_workers_gives_one_back() -> None:
    # o1 runs one (the newest overall), o2 runs three: o2 loses its newest.
    workers = [
        worker(1, owner="o1", at=10.0),
        worker(2, owner="o2", at=1.0),
        worker(3, owner="o2", at=5.0),
        worker(4, owner="o2", at=2.0),
    ]
    assert choose_victim(workers).worker_id == wid(3)
    # Equal groups: the one with the newest lease.
    assert choose_victim(workers[:2]).worker_id == wid(1)


def test_ties_on_lease_time_go_to_the_biggest_then_a_fixed_one() -> None:
    small, big = worker(1, at=1.0, rss=10), worker(2, at=1.0, rss=20)
    assert choose_victim([small, big]) == big
    twins = [worker(3, at=1.0), worker(4, at=1.0)]
    assert choose_victim(twins) == choose_victim(list(reversed(twins)))


def test_one_kill_at_a_time_until_the_victim_is_gone_and_the_interval_passed() -> None:
    mon, clock = monitor(min_kill_interval_s=1.0, exit_wait_s=5.0)
    workers = [worker(1, at=1.0), worker(2, at=2.0)]
    first = mon.decide(FULL, workers)
    assert isinstance(first, KillForMemory) and first.worker_id == wid(2)
    clock.advance(2.0)
    assert mon.decide(FULL, workers) is None  # its exit is not seen yet: its memory may come back
    mon.worker_exited(first.worker_id)
    second = mon.decide(FULL, workers)  # the shell's list may be stale: never the same one twice
    assert isinstance(second, KillForMemory) and second.worker_id == wid(1)
    mon.worker_exited(second.worker_id)
    clock.advance(0.5)
    assert mon.decide(FULL, [worker(3)]) is None  # too soon after the last kill
    clock.advance(0.5)
    assert isinstance(mon.decide(FULL, [worker(3)]), KillForMemory)


def test_a_victim_that_never_exits_holds_the_next_kill_back_only_so_long() -> None:
    mon, clock = monitor(min_kill_interval_s=1.0, exit_wait_s=5.0)
    stuck = mon.decide(FULL, [worker(1)])
    assert isinstance(stuck, KillForMemory)
    clock.advance(4.9)
    assert mon.decide(FULL, [worker(1), worker(2)]) is None
    clock.advance(0.2)
    again = mon.decide(FULL, [worker(1), worker(2)])
    assert isinstance(again, KillForMemory) and again.worker_id == wid(2)


def test_nothing_to_kill_is_said_once_a_while() -> None:
    mon, clock = monitor(warn_interval_s=60.0)
    said = mon.decide(FULL, [])
    assert isinstance(said, NothingToKill) and "96.0%" in said.message
    clock.advance(30)
    assert mon.decide(FULL, []) is None
    clock.advance(31)
    assert isinstance(mon.decide(FULL, []), NothingToKill)


def _tier(w: RunningWorker) -> int:
    return 2 if w.is_actor else 1 if w.retriable is False else 0


_workers = st.lists(
    st.builds(
        worker,
        st.integers(1, 40),
        owner=st.sampled_from(["o1", "o2", "o3", "gcs"]),
        at=st.floats(0, 100),
        actor=st.booleans(),
        retriable=st.sampled_from([None, True, False]),
        rss=st.integers(0, GIB),
    ),
    max_size=12,
    unique_by=lambda w: w.worker_id,
)


@given(
    st.lists(
        st.tuples(_workers, st.integers(0, 20 * GIB), st.floats(0, 3), st.booleans()),
        max_size=25,
    ),
    st.floats(0.5, 1.0),
)
def test_property_decisions_keep_their_promises(
    steps: list[tuple[list[RunningWorker], int, float, bool]], threshold: float
) -> None:
    mon, clock = monitor(threshold, min_kill_interval_s=1.0, exit_wait_s=5.0)
    killed: set[WorkerID] = set()
    last_kill: float | None = None
    for workers, used, wait, victims_exit in steps:
        clock.advance(wait)
        usage = MemoryUsage(used, 10 * GIB)
        decision = mon.decide(usage, workers)
        if usage.fraction < threshold:
            assert decision is None  # never under the threshold
        if isinstance(decision, KillForMemory):
            victim = next(w for w in workers if w.worker_id == decision.worker_id)
            assert victim.worker_id not in killed  # never the same worker twice
            assert last_kill is None or clock.now - last_kill >= 1.0  # kills are spaced
            others = [w for w in workers if w.worker_id not in killed]
            # Task workers before actors' (retriable ones first), the biggest owner group,
            # its newest lease.
            tier = _tier(victim)
            assert tier == min(_tier(w) for w in others)
            peers = [w for w in others if _tier(w) == tier]
            group = [w for w in peers if w.owner == victim.owner]
            assert all(
                len(group) >= len([w for w in peers if w.owner == o]) for o in {w.owner for w in peers}
            )
            assert all(w.granted_at <= victim.granted_at for w in group)
            killed.add(victim.worker_id)
            last_kill = clock.now
            if victims_exit:
                mon.worker_exited(victim.worker_id)
    assert mon.statistics().kills == len(killed)


# -- readings --------------------------------------------------------------------------------


def test_cgroup_v2_reading_leaves_out_reclaimable_cache() -> None:
    stat = "anon 100\nfile 900\ninactive_file 300\nactive_file 600\n"
    assert parse_cgroup_v2("1000\n", "800\n", stat) == MemoryUsage(500, 1000)
    assert parse_cgroup_v2("max\n", "800\n", stat) is None


def test_cgroup_v1_reading_and_its_unlimited_value() -> None:
    stat = "rss 10\ninactive_file 5\ntotal_inactive_file 200\n"
    assert parse_cgroup_v1("4096\n", "1000\n", stat) == MemoryUsage(800, 4096)
    assert parse_cgroup_v1("9223372036854771712\n", "1000\n", stat) is None


def test_cgroup_dirs_come_from_proc_self_cgroup_then_the_root() -> None:
    text = "9:name=systemd:/\n4:memory:/box/1\n0::/slice/a\n"
    assert cgroup_dirs(text, "/cg") == [
        ("/cg/memory/box/1", 1),
        ("/cg/slice/a", 2),
        ("/cg", 2),
        ("/cg/memory", 1),
    ]


def test_read_cgroup_usage_takes_the_first_limited_group(tmp_path: os.PathLike[str]) -> None:
    unlimited = os.path.join(tmp_path, "a")
    limited = os.path.join(tmp_path, "b")
    for path, limit in ((unlimited, "max"), (limited, "2048")):
        os.makedirs(path)
        for name, text in (
            ("memory.max", limit),
            ("memory.current", "1024"),
            ("memory.stat", "inactive_file 24\n"),
        ):
            with open(os.path.join(path, name), "w") as f:
                f.write(text + "\n")
    missing = os.path.join(tmp_path, "none")
    assert read_cgroup_usage([(missing, 1), (unlimited, 2), (limited, 2)]) == MemoryUsage(1000, 2048)
    assert read_cgroup_usage([(missing, 2)]) is None
