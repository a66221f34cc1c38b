"""Benchmark workloads, written once against a module object ``ray`` (``manta`` or ``ray``).

Run one workload per fresh process, so that no workload disturbs another:
    python bench/workloads.py --framework manta --workload tasks_sync [--quick]
It prints one JSON line of metrics on stdout. ``bench/run.py`` drives it.

A third framework, ``pool``, runs the task workloads in ``POOL_WORKLOADS`` on a plain
``multiprocessing.Pool`` through ``PoolShim``: the floor for per-task IPC in Python here.

This file must import under Ray's interpreter too, so it never imports ``manta`` directly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Metrics = dict[str, Any]
# The ``manta`` or ``ray`` module, or a ``PoolShim``; workloads call the Ray API on it.
Framework = Any


@dataclass(frozen=True)
class Startup:
    """What the shell measured and started before the workload runs."""

    t0: float  # perf_counter() just before the framework's import
    import_s: float
    init_s: float
    session_dir: str
    quick: bool


class _PoolFunction:
    def __init__(self, pool: Any, fn: Callable[..., Any]) -> None:
        self._pool, self._fn = pool, fn

    def remote(self, *args: Any) -> Any:
        return self._pool.apply_async(self._fn, args)


class PoolShim:
    """The part of the Ray API the task workloads use, on a ``multiprocessing.Pool`` of
    ``num_cpus`` processes (the default start method): ``f.remote(*args)`` is
    ``apply_async`` and ``get`` waits on its ``AsyncResult``. ``init`` builds the pool."""

    def __init__(self) -> None:
        self._pool: Any = None

    def init(self, num_cpus: int, **ignored: Any) -> None:
        import multiprocessing

        self._pool = multiprocessing.Pool(num_cpus)

    def remote(self, fn: Callable[..., Any]) -> _PoolFunction:
        return _PoolFunction(self._pool, fn)

    def get(self, refs: Any) -> Any:
        return [r.get() for r in refs] if isinstance(refs, list) else refs.get()

    def shutdown(self) -> None:
        self._pool.close()
        self._pool.join()


def _noop() -> None:
    return None


def _echo(x: Any) -> Any:
    return x


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def init_to_first_result(ray: Framework, s: Startup) -> Metrics:
    ray.get(ray.remote(_noop).remote())
    return {"import_s": s.import_s, "init_s": s.init_s, "total_s": round(time.perf_counter() - s.t0, 3)}


def tasks_sync(ray: Framework, s: Startup, n: int = 2000) -> Metrics:
    f = ray.remote(_noop)
    for _ in range(100):
        ray.get(f.remote())
    t = time.perf_counter()
    for _ in range(n):
        ray.get(f.remote())
    return {"tasks_per_s": _rate(n, time.perf_counter() - t)}


def _async_rate(ray: Framework, f: Any, args: tuple[Any, ...], n: int) -> float:
    ray.get([f.remote(*args) for _ in range(200)])
    t = time.perf_counter()
    ray.get([f.remote(*args) for _ in range(n)])
    return _rate(n, time.perf_counter() - t)


def tasks_async(ray: Framework, s: Startup, n: int = 5000) -> Metrics:
    return {"tasks_per_s": _async_rate(ray, ray.remote(_noop), (), n)}


def tasks_1kib_arg(ray: Framework, s: Startup, n: int = 5000) -> Metrics:
    return {"tasks_per_s": _async_rate(ray, ray.remote(_echo), (b"x" * 1024,), n)}


def nested_tasks(ray: Framework, s: Startup, outer: int = 20, inner: int = 50) -> Metrics:
    leaf = ray.remote(_noop)

    def run_children(m: int) -> int:
        return len(ray.get([leaf.remote() for _ in range(m)]))

    parent = ray.remote(run_children)
    ray.get([parent.remote(5) for _ in range(2)])
    t = time.perf_counter()
    assert sum(ray.get([parent.remote(inner) for _ in range(outer)])) == outer * inner
    return {"tasks_per_s": _rate(outer * (inner + 1), time.perf_counter() - t)}


def put_get_small(ray: Framework, s: Startup, n: int = 5000) -> Metrics:
    for i in range(100):
        ray.get(ray.put(i))
    t = time.perf_counter()
    for i in range(n):
        assert ray.get(ray.put(i)) == i
    return {"round_trips_per_s": _rate(n, time.perf_counter() - t)}


def _put_get(ray: Framework, nbytes: int, rounds: int) -> Metrics:
    """GB/s of put and get of a float64 array of ``nbytes``: the first put (which maps
    fresh store pages) and the median of the rounds after it (the steady state)."""
    import statistics

    import numpy as np

    arr = np.arange(nbytes // 8, dtype=np.float64)  # pages already touched
    puts: list[float] = []
    gets: list[float] = []
    zero_copy = True
    for _ in range(rounds):
        t = time.perf_counter()
        ref = ray.put(arr)
        puts.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = ray.get(ref)
        gets.append(time.perf_counter() - t)
        assert out.shape == arr.shape and out[-1] == arr[-1]
        zero_copy = zero_copy and not out.flags.writeable
        del out, ref
    gb = arr.nbytes / 1e9
    return {
        "first_put_gb_per_s": round(gb / puts[0], 2),
        "put_gb_per_s": round(gb / statistics.median(puts[1:]), 2),
        "get_gb_per_s": round(gb / statistics.median(gets[1:]), 2),
        "get_zero_copy": zero_copy,
    }


def put_get_1mb(ray: Framework, s: Startup) -> Metrics:
    return _put_get(ray, 1_000_000, 50)


def put_get_100mb(ray: Framework, s: Startup) -> Metrics:
    return _put_get(ray, 100_000_000, 6)


def put_get_1gb(ray: Framework, s: Startup) -> Metrics:
    return _put_get(ray, 1_000_000_000, 4)


def pass_100mb_to_10_tasks(ray: Framework, s: Startup) -> Metrics:
    """One 100 MB array put once and passed to 10 tasks: on one node each task should map
    the stored copy, not receive one of its own."""
    import numpy as np

    ref = ray.put(np.ones(100_000_000 // 8))

    @ray.remote
    def probe(a: Any) -> tuple[float, bool]:
        return float(a[::4096].sum()), bool(a.flags.writeable)

    ray.get(probe.remote(ref))  # workers started and warm
    t = time.perf_counter()
    out = ray.get([probe.remote(ref) for _ in range(10)])
    elapsed = time.perf_counter() - t
    return {
        "seconds_for_10": round(elapsed, 4),
        "effective_gb_per_s": round(10 * 0.1 / elapsed, 1),
        "arg_zero_copy": not any(writeable for _, writeable in out),
    }


SPILL_STORE_BYTES = 512 * 1024 * 1024


def spill_restore(ray: Framework, s: Startup) -> Metrics:
    """Put 4x a 512 MiB store in 64 MiB arrays while holding every ref (the excess is
    spilled), then read them all back (each spilled one is restored, spilling another),
    next to how fast this disk takes a buffered and a synced sequential write."""
    import os

    import numpy as np

    chunk = 64 * 1024 * 1024
    count = 4 * SPILL_STORE_BYTES // chunk
    arr = np.ones(chunk // 8)
    t = time.perf_counter()
    refs = [ray.put(arr) for _ in range(count)]
    put_s = time.perf_counter() - t
    t = time.perf_counter()
    for ref in refs:
        out = ray.get(ref)
        assert out[-1] == 1.0
        del out
    get_s = time.perf_counter() - t
    total_gb = count * chunk / 1e9
    spilled_gb = total_gb - SPILL_STORE_BYTES / 1e9
    del refs
    return {
        "put_gb_per_s": round(total_gb / put_s, 2),
        "spill_write_gb_per_s": round(spilled_gb / put_s, 2),
        "get_gb_per_s": round(total_gb / get_s, 2),
        "disk_buffered_write_gb_per_s": _disk_write(os.path.join(s.session_dir, "disk-probe"), sync=False),
        "disk_synced_write_gb_per_s": _disk_write(os.path.join(s.session_dir, "disk-probe"), sync=True),
    }


def _disk_write(path: str, sync: bool, nbytes: int = 1 << 30) -> float:
    import os

    block = b"\1" * (16 << 20)
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for _ in range(nbytes // len(block)):
            f.write(block)
        if sync:
            os.fsync(f.fileno())
    elapsed = time.perf_counter() - t
    os.unlink(path)
    return round(nbytes / 1e9 / elapsed, 2)


def _wait_rate(ray: Framework, count: int, n: int, warmup: int) -> Metrics:
    """Calls/s of ``wait`` for all of ``count`` ready refs from ``put``, after ``warmup`` calls."""
    refs = [ray.put(i) for i in range(count)]
    for _ in range(warmup):
        ray.wait(refs, num_returns=len(refs))
    t = time.perf_counter()
    for _ in range(n):
        ready, _ = ray.wait(refs, num_returns=len(refs))
        assert len(ready) == len(refs)
    return {"calls_per_s": _rate(n, time.perf_counter() - t)}


def wait(ray: Framework, s: Startup) -> Metrics:
    return _wait_rate(ray, 1000, 200, warmup=1)


def wait_100(ray: Framework, s: Startup) -> Metrics:
    return _wait_rate(ray, 100, 2000, warmup=100)


def get_256mib(ray: Framework, s: Startup, gets: int = 20) -> Metrics:
    """Median ms of ``get`` of one stored 256 MiB float64 array, each result dropped
    before the next ``get``; a zero-copy result comes back read-only."""
    import statistics

    import numpy as np

    arr = np.arange((256 << 20) // 8, dtype=np.float64)
    ref = ray.put(arr)
    times: list[float] = []
    zero_copy = True
    for _ in range(gets):
        t = time.perf_counter()
        out = ray.get(ref)
        times.append(time.perf_counter() - t)
        assert out.shape == arr.shape and out[-1] == arr[-1]
        zero_copy = zero_copy and not out.flags.writeable
        del out
    return {"get_ms": round(statistics.median(times) * 1000, 3), "get_zero_copy": zero_copy}


def queued_100k(ray: Framework, s: Startup) -> Metrics:
    n = 20_000 if s.quick else 100_000
    f = ray.remote(_noop)
    t = time.perf_counter()
    refs = [f.remote() for _ in range(n)]
    submit_s = time.perf_counter() - t
    ray.get(refs)
    total_s = time.perf_counter() - t
    return {
        "tasks": n,
        "submit_s": round(submit_s, 2),
        "total_s": round(total_s, 2),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


class _Echo:
    def f(self, x: Any = None) -> Any:
        return x


class _AsyncEcho:
    async def f(self, x: Any = None) -> Any:
        return x


def actor_creation(ray: Framework, s: Startup) -> Metrics:
    n = 10 if s.quick else 30
    cls = ray.remote(_Echo)
    t = time.perf_counter()
    actors = [cls.remote() for _ in range(n)]
    ray.get([a.f.remote() for a in actors])
    elapsed = time.perf_counter() - t
    for a in actors:
        ray.kill(a)
    return {"actors_per_s": _rate(n, elapsed)}


def actor_calls_sync(ray: Framework, s: Startup, n: int = 2000) -> Metrics:
    a = ray.remote(_Echo).remote()
    for _ in range(100):
        ray.get(a.f.remote())
    t = time.perf_counter()
    for _ in range(n):
        ray.get(a.f.remote())
    return {"calls_per_s": _rate(n, time.perf_counter() - t)}


def actor_calls_async(ray: Framework, s: Startup, n: int = 5000) -> Metrics:
    a = ray.remote(_Echo).remote()
    return {"calls_per_s": _async_rate(ray, a.f, (), n)}


def actor_calls_nn(ray: Framework, s: Startup, n: int = 2000, callers: int = 2) -> Metrics:
    """``callers`` tasks, each submitting ``n`` calls to its own actor and getting them."""
    cls = ray.remote(_Echo)

    def drive(actor: Any, m: int) -> int:
        return len(ray.get([actor.f.remote() for _ in range(m)]))

    driver = ray.remote(drive)
    actors = [cls.remote() for _ in range(callers)]
    ray.get([driver.remote(a, 100) for a in actors])
    t = time.perf_counter()
    assert sum(ray.get([driver.remote(a, n) for a in actors])) == n * callers
    return {"calls_per_s": _rate(n * callers, time.perf_counter() - t)}


def async_actor_calls(ray: Framework, s: Startup, n: int = 5000) -> Metrics:
    a = ray.remote(_AsyncEcho).remote()
    return {"calls_per_s": _async_rate(ray, a.f, (), n)}


def actor_calls_1mb_arg(ray: Framework, s: Startup, n: int = 200) -> Metrics:
    a = ray.remote(_Echo).remote()
    payload = b"x" * (1 << 20)
    ray.get([a.f.remote(payload) for _ in range(10)])
    t = time.perf_counter()
    ray.get([a.f.remote(payload) for _ in range(n)])
    return {"calls_per_s": _rate(n, time.perf_counter() - t)}


def _small_items(n: int) -> Any:
    for i in range(n):  # noqa: UP028 - Ray 2.60's generator tasks fail on `yield from range(n)`
        yield i


def _mb_items(n: int) -> Any:
    import numpy as np

    for i in range(n):
        yield np.full(1 << 20, i % 256, dtype=np.uint8)


def _drain_generator(ray: Framework, fn: Any, n: int) -> float:
    """Seconds to stream ``n`` items from a generator task, getting each as it arrives."""
    gen_task = ray.remote(fn)
    for ref in gen_task.remote(10):  # warm up: a worker, the function exported
        ray.get(ref)
    t = time.perf_counter()
    got = 0
    for ref in gen_task.remote(n):
        ray.get(ref)
        got += 1
    assert got == n
    return time.perf_counter() - t


def generator_small_items(ray: Framework, s: Startup, n: int = 10_000) -> Metrics:
    """A streaming generator task yielding small ints; the driver gets each item."""
    return {"items_per_s": _rate(n, _drain_generator(ray, _small_items, n))}


def generator_1mb_items(ray: Framework, s: Startup, n: int = 500) -> Metrics:
    """A streaming generator task yielding 1 MiB numpy arrays (through the object store)."""
    seconds = _drain_generator(ray, _mb_items, n)
    return {"items_per_s": _rate(n, seconds), "gb_per_s": round(n * (1 << 20) / seconds / 1e9, 2)}


def idle_footprint(ray: Framework, s: Startup) -> Metrics:
    import psutil

    ray.get(ray.remote(_noop).remote())
    time.sleep(3)
    me = psutil.Process()
    procs = {p.pid: p for p in me.children(recursive=True)}
    for p in psutil.process_iter(["cmdline"]):
        # Daemons that re-parent themselves away from the driver still name the session dir.
        if p.pid != me.pid and s.session_dir in " ".join(p.info["cmdline"] or []):
            procs.setdefault(p.pid, p)
    listed = []
    for p in procs.values():
        try:
            listed.append({"name": _label(p), "rss_mb": round(p.memory_info().rss / 2**20, 1)})
        except psutil.NoSuchProcess:
            continue
    listed.sort(key=lambda d: -d["rss_mb"])
    total = round(sum(d["rss_mb"] for d in listed), 1)
    return {"processes": len(listed), "rss_mb": total, "process_list": listed}


def _label(p: Any) -> str:
    """``p.name()``, or for a bare interpreter the module or script it runs."""
    name: str = p.name()
    if name.startswith("python"):
        args = p.cmdline()[1:]
        if args[:1] == ["-m"] and len(args) > 1:
            return str(args[1])
        script = next((a for a in args if a.endswith(".py")), "")
        return script.rsplit("/", 1)[-1] or name
    return name


WORKLOADS: dict[str, Callable[[Framework, Startup], Metrics]] = {
    f.__name__: f
    for f in (
        init_to_first_result,
        tasks_sync,
        tasks_async,
        tasks_1kib_arg,
        nested_tasks,
        put_get_small,
        put_get_1mb,
        put_get_100mb,
        put_get_1gb,
        pass_100mb_to_10_tasks,
        spill_restore,
        wait,
        wait_100,
        get_256mib,
        queued_100k,
        idle_footprint,
        actor_creation,
        actor_calls_sync,
        actor_calls_async,
        actor_calls_nn,
        async_actor_calls,
        actor_calls_1mb_arg,
        generator_small_items,
        generator_1mb_items,
    )
}

# The workloads that make sense for a plain ``multiprocessing.Pool`` (framework "pool").
POOL_WORKLOADS = frozenset(
    {"init_to_first_result", "tasks_sync", "tasks_async", "tasks_1kib_arg", "queued_100k"}
)

# init() options a workload needs beyond the common ones.
INIT_OPTIONS: dict[str, dict[str, Any]] = {"spill_restore": {"object_store_memory": SPILL_STORE_BYTES}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["manta", "ray", "pool"], required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.framework == "pool" and args.workload not in POOL_WORKLOADS:
        parser.error(f"pool runs only {', '.join(sorted(POOL_WORKLOADS))}")
    t0 = time.perf_counter()
    if args.framework == "pool":
        importlib.import_module("multiprocessing.pool")
        ray: Framework = PoolShim()
    else:
        ray = importlib.import_module(args.framework)
    t1 = time.perf_counter()
    ctx = ray.init(num_cpus=2, include_dashboard=False, **INIT_OPTIONS.get(args.workload, {}))
    t2 = time.perf_counter()
    session_dir = ctx.address_info["session_dir"] if ctx is not None else ""
    startup = Startup(t0, round(t1 - t0, 3), round(t2 - t1, 3), session_dir, args.quick)
    try:
        metrics = WORKLOADS[args.workload](ray, startup)
    finally:
        ray.shutdown()
    metrics["leftover_processes"] = _leftovers()
    print(json.dumps(metrics), flush=True)


def _leftovers(grace_s: float = 5.0) -> list[str]:
    """Processes this driver started that outlive ``shutdown`` by more than ``grace_s``."""
    import psutil

    _, alive = psutil.wait_procs(psutil.Process().children(recursive=True), timeout=grace_s)
    return [f"{p.pid}:{p.name()}" for p in alive if p.is_running()]


if __name__ == "__main__":
    main()
