"""Pieces of the Pool that need no cluster: result delivery and shared module globals."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import cloudpickle
import pytest

from manta.util.multiprocessing import results
from manta.util.multiprocessing.pool import share_module_globals
from manta.util.multiprocessing.results import Deliveries

_SCRIPT = """
counter = 0

def init(value):
    global counter
    counter = value

def helper():
    return counter

def read(step):
    return helper() + step
"""


def _shipped_functions() -> dict[str, object]:
    """The script's functions as a worker receives them: each pickled by value, alone."""
    namespace: dict[str, object] = {"__name__": "not_importable_script"}
    exec(_SCRIPT, namespace)
    return {name: cloudpickle.loads(cloudpickle.dumps(namespace[name])) for name in ("init", "read")}


def test_functions_shipped_apart_do_not_share_globals() -> None:
    fns = _shipped_functions()
    fns["init"](5)  # type: ignore[operator]
    assert fns["read"](1) == 1  # type: ignore[operator]  # read sees its own copy: counter 0


def test_bound_functions_share_one_namespace_per_module() -> None:
    fns = _shipped_functions()
    namespaces: dict[str, dict[str, object]] = {}
    share_module_globals(fns["init"], namespaces, {})(5)
    read = share_module_globals(fns["read"], namespaces, {})
    assert read(1) == 6  # through helper, a function among read's globals
    # A value the initializer set wins over the value pickled with a later function.
    again = share_module_globals(_shipped_functions()["read"], namespaces, {})
    assert again(0) == 5


def test_functions_of_importable_modules_are_left_alone() -> None:
    assert share_module_globals(share_module_globals, {}, {}) is share_module_globals
    assert share_module_globals(len, {}, {}) is len


def test_deliveries_run_one_at_a_time_in_order_of_completion() -> None:
    deliveries = Deliveries()
    seen: list[int] = []
    running = threading.Semaphore(1)

    def handler(future: Future[int]) -> None:
        assert running.acquire(blocking=False), "two handlers ran at once"
        seen.append(future.result())
        running.release()

    futures: list[Future[int]] = [Future() for _ in range(20)]
    for f in futures:
        deliveries.watch(f, handler)
    threads = [threading.Thread(target=f.set_result, args=(i,)) for i, f in enumerate(futures)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert deliveries.wait_idle(timeout=10)
    assert sorted(seen) == list(range(20))


def test_a_failing_handler_does_not_stop_later_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded on the logger itself: once manta.init configured logging, the "manta"
    # loggers no longer propagate to pytest's capture.
    logged: list[str] = []
    monkeypatch.setattr(results.logger, "exception", logged.append)
    deliveries = Deliveries()
    seen: list[int] = []

    def handler(future: Future[int]) -> None:
        if future.result() == 0:
            raise RuntimeError("handler bug")
        seen.append(future.result())

    futures: list[Future[int]] = [Future(), Future()]
    for f in futures:
        deliveries.watch(f, handler)
    futures[0].set_result(0)
    futures[1].set_result(1)
    assert deliveries.wait_idle(timeout=10)
    assert seen == [1]
    assert logged == ["Error while delivering a pool result"]
