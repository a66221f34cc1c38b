"""``ray._common.test_utils``: the helpers Ray's tests and many users' tests import.

- ``wait_for_condition`` / ``async_wait_for_condition``: poll a predicate until it holds.
- ``SignalActor``, ``Semaphore``: small actors (``num_cpus=0``) that tasks block on.
- ``run_string_as_driver``: run a script as a separate driver and return its output.

A driver script started here runs through ``python -m manta.compat.run_as_ray``, so its
``import ray`` reaches Manta as this process's does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import manta

logger = logging.getLogger("manta")

__all__ = [
    "DEFAULT_DRIVER_TIMEOUT_SECONDS",
    "Semaphore",
    "SignalActor",
    "async_wait_for_condition",
    "run_string_as_driver",
    "wait_for_condition",
]

# How long run_string_as_driver waits for its driver before killing it (Ray's default).
DEFAULT_DRIVER_TIMEOUT_SECONDS = 300
# How long to collect output from a driver that was killed for running too long.
_KILLED_DRIVER_DRAIN_SECONDS = 10

# The command that runs a driver script read from stdin with the ray import hook.
DRIVER_COMMAND = (sys.executable, "-m", "manta.compat.run_as_ray", "-")

_TIMEOUT_MESSAGE = "The condition wasn't met before the timeout expired."


def wait_for_condition(
    condition_predictor: Callable[..., Any],
    timeout: float = 10,
    retry_interval_ms: float = 100,
    raise_exceptions: bool = False,
    **kwargs: Any,
) -> None:
    """Call ``condition_predictor(**kwargs)`` every ``retry_interval_ms`` until it returns
    a true value. Exceptions it raises count as false (or propagate, with
    ``raise_exceptions``). Raises RuntimeError after ``timeout`` seconds, with the last
    exception's traceback, if there was one."""
    deadline = time.monotonic() + timeout
    last_error: str | None = None
    while True:
        try:
            if condition_predictor(**kwargs):
                return
        except Exception:
            if raise_exceptions:
                raise
            last_error = traceback.format_exc()
        if time.monotonic() >= deadline:
            break
        time.sleep(retry_interval_ms / 1000)
    raise RuntimeError(_timeout_message(last_error))


async def async_wait_for_condition(
    condition_predictor: Callable[..., Any | Awaitable[Any]],
    timeout: float = 10,
    retry_interval_ms: float = 100,
    **kwargs: Any,
) -> None:
    """``wait_for_condition`` for a coroutine: the predictor may be sync or async."""
    deadline = time.monotonic() + timeout
    last_error: str | None = None
    while True:
        try:
            result = condition_predictor(**kwargs)
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except Exception as e:
            last_error = repr(e)
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(retry_interval_ms / 1000)
    raise RuntimeError(_timeout_message(last_error))


def _timeout_message(last_error: str | None) -> str:
    if last_error is None:
        return _TIMEOUT_MESSAGE
    return f"{_TIMEOUT_MESSAGE} Last exception: {last_error}"


class _Signal:
    """An event tasks wait on until someone sends it; counts its waiters."""

    def __init__(self) -> None:
        self.ready_event = asyncio.Event()
        self.num_waiters = 0

    def send(self, clear: bool = False) -> None:
        """Release every waiter; with ``clear``, later waiters block again."""
        self.ready_event.set()
        if clear:
            self.ready_event.clear()

    async def wait(self, should_wait: bool = True) -> None:
        if should_wait:
            self.num_waiters += 1
            await self.ready_event.wait()
            self.num_waiters -= 1

    async def cur_num_waiters(self) -> int:
        return self.num_waiters


class _Semaphore:
    """An asyncio semaphore in an actor, shared by whoever holds the handle."""

    def __init__(self, value: int = 1) -> None:
        self._sema = asyncio.Semaphore(value=value)

    async def acquire(self) -> None:
        await self._sema.acquire()

    async def release(self) -> None:
        self._sema.release()

    async def locked(self) -> bool:
        return self._sema.locked()


SignalActor = manta.remote(num_cpus=0)(_Signal)
Semaphore = manta.remote(num_cpus=0)(_Semaphore)


def run_string_as_driver(
    driver_script: str,
    env: dict[str, str] | None = None,
    encode: str = "utf-8",
    timeout: float | None = DEFAULT_DRIVER_TIMEOUT_SECONDS,
) -> str:
    """Run ``driver_script`` in a new Python process and return its output (stdout and
    stderr together). Raises CalledProcessError if it exits non-zero, and
    TimeoutExpired (after killing it) if it runs longer than ``timeout`` seconds."""
    with subprocess.Popen(
        DRIVER_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    ) as proc:
        output = _communicate(proc, driver_script.encode(encode), timeout, encode)[0]
        out = output.decode(encode)
        if proc.returncode:
            print(out)
            raise subprocess.CalledProcessError(proc.returncode, proc.args, output)
    return out


def _communicate(
    proc: subprocess.Popen[bytes], script: bytes, timeout: float | None, encode: str
) -> tuple[bytes, bytes]:
    """Feed the script and collect the output; on timeout kill the process, log what it
    printed and raise."""
    try:
        out, err = proc.communicate(script, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        proc.kill()
        try:
            out, err = proc.communicate(timeout=_KILLED_DRIVER_DRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            out, err = (e.output or b""), (e.stderr or b"")
        logger.error(
            "Driver did not exit within %ss; killed it. Output so far:\n%s",
            timeout,
            (out + (err or b"")).decode(encode, errors="replace"),
        )
        raise
    return out, err or b""
