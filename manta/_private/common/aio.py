"""asyncio helpers: the preferred event loop (uvloop where available) and owned background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)
_tasks: set[asyncio.Task[Any]] = set()

try:
    import uvloop
except ImportError:  # pragma: no cover - platforms without uvloop
    uvloop = None  # type: ignore[assignment]


def new_event_loop() -> asyncio.AbstractEventLoop:
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def spawn(coro: Coroutine[Any, Any, Any], what: str = "background task") -> asyncio.Task[Any]:
    """Start ``coro`` as a task that is kept alive until done and whose failure is logged."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(lambda t: _finished(t, what))
    return task


def _finished(task: asyncio.Task[Any], what: str) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s failed", what, exc_info=task.exception())


def resolve(fut: asyncio.Future[Any], value: Any) -> None:
    """Set ``fut``'s result unless it is already done (cancelled by its waiter, say)."""
    if not fut.done():
        fut.set_result(value)
