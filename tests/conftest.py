"""Shared test policy: nothing a test starts may outlive it.

After every test module, no child process of the test process may remain and no Manta
I/O thread may be running; a leak fails the module's last test with the leftovers named.
"""

from __future__ import annotations

import threading
import time

import psutil
import pytest


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _leftover_children(timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in psutil.Process().children(recursive=True):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.fixture(scope="module", autouse=True)
def no_leaks_after_module():
    yield
    import manta

    if manta.is_initialized():
        manta.shutdown()
        pytest.fail("the module left Manta initialized; shut it down in the fixture that started it")
    leftovers = _leftover_children()
    threads = [t.name for t in threading.enumerate() if t.name.startswith("manta-")]
    assert not leftovers, f"processes outlived the test module: {leftovers}"
    assert not threads, f"threads outlived the test module: {threads}"
