"""Waiting in tests: for files a task or actor leaves, for conditions, for processes to end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil


def touch(path: Any) -> None:
    with open(path, "w") as f:
        f.write("x")


def wait_for_files(*paths: Any, timeout: float = 20.0) -> None:
    """Until every path exists; AssertionError naming the missing ones after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(p) for p in paths):
        if time.monotonic() > deadline:
            missing = [str(p) for p in paths if not os.path.exists(p)]
            raise AssertionError(f"files never appeared: {missing}")
        time.sleep(0.02)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    """The predicate's first true value; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never held within {timeout} s")
        time.sleep(0.05)


def poll(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Whether ``predicate`` became true within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its parent counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
