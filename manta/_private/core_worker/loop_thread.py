"""The core worker's I/O thread: one asyncio loop beside the user's thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from manta._private.common.aio import new_event_loop

_T = TypeVar("_T")


class EventLoopThread:
    """Runs an event loop in a daemon thread; other threads hand it work."""

    def __init__(self, name: str) -> None:
        self.loop = new_event_loop()
        # Each hand-off of work to the loop stores a number never stored before (next() on
        # a count is atomic; a plain += across threads could lose one): a thread that
        # saw ``last_handoff`` unchanged since it looked handed the loop nothing meanwhile.
        self._handoff_numbers = itertools.count(1)
        self.last_handoff = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.last_handoff = next(self._handoff_numbers)
        self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coro`` on the loop and wait for it from another thread."""
        return self.submit(coro).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        self.last_handoff = next(self._handoff_numbers)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 2.0) -> None:
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


async def loop_turns(count: int = 3) -> None:
    """Let the loop run ``count`` times round: what was handed to it before (a reply, and
    the write it schedules) is on its socket after."""
    for _ in range(count):
        await asyncio.sleep(0)
