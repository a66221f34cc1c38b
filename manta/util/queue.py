"""A first-in first-out queue shared between drivers, tasks and actors, held by an actor
(Ray's ``ray.util.queue.Queue``). ``Empty`` and ``Full`` are the standard library's
``queue.Empty`` and ``queue.Full`` subclasses, so existing ``except`` clauses work."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable
from typing import Any

import manta


class Empty(queue.Empty):
    pass


class Full(queue.Full):
    pass


class Queue:
    """``Queue(maxsize=0)``: 0 means unbounded. ``actor_options`` go to the queue's actor."""

    def __init__(self, maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> None:
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a non-negative int, got {maxsize!r}")
        self.maxsize = maxsize
        options = {"num_cpus": 0, **(actor_options or {})}
        self.actor = manta.remote(_QueueActor).options(**options).remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        return int(manta.get(self.actor.qsize.remote()))

    qsize = size

    def empty(self) -> bool:
        return bool(manta.get(self.actor.empty.remote()))

    def full(self) -> bool:
        return bool(manta.get(self.actor.full.remote()))

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; when full, wait (up to ``timeout``) or raise ``Full``."""
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if not block:
            if not manta.get(self.actor.put_nowait.remote(item)):
                raise Full
            return
        if not manta.get(self.actor.put.remote(item, timeout)):
            raise Full

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if not block:
            if not await self.actor.put_nowait.remote(item):
                raise Full
            return
        if not await self.actor.put.remote(item, timeout):
            raise Full

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the oldest item; when empty, wait (up to ``timeout``) or raise ``Empty``."""
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if not block:
            ok, item = manta.get(self.actor.get_nowait.remote())
        else:
            ok, item = manta.get(self.actor.get.remote(timeout))
        if not ok:
            raise Empty
        return item

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block:
            ok, item = await self.actor.get_nowait.remote()
        else:
            ok, item = await self.actor.get.remote(timeout)
        if not ok:
            raise Empty
        return item

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all ``items`` or none: ``Full`` if they do not all fit."""
        items = list(items)
        if not manta.get(self.actor.put_nowait_batch.remote(items)):
            raise Full(
                f"Cannot add {len(items)} items to queue of size {self.size()} and maxsize {self.maxsize}."
            )

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Take ``num_items`` items at once, or raise ``Empty`` if there are fewer."""
        if not isinstance(num_items, int) or num_items < 0:
            raise ValueError("'num_items' must be a non-negative int")
        ok, items = manta.get(self.actor.get_nowait_batch.remote(num_items))
        if not ok:
            raise Empty(f"Cannot get {num_items} items from queue of size {self.size()}.")
        return list(items)

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """End the queue's actor (its items are lost)."""
        if self.actor is None:
            return
        if force:
            manta.kill(self.actor, no_restart=True)
        else:
            done = self.actor.__ray_terminate__.remote()
            ready, _ = manta.wait([done], timeout=grace_period_s)
            if not ready:
                manta.kill(self.actor, no_restart=True)
        self.actor = None


class _QueueActor:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def get(self, timeout: float | None = None) -> tuple[bool, Any]:
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    async def put_nowait(self, item: Any) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def put_nowait_batch(self, items: list[Any]) -> bool:
        if self.maxsize and self.queue.qsize() + len(items) > self.maxsize:
            return False
        for item in items:
            self.queue.put_nowait(item)
        return True

    async def get_nowait(self) -> tuple[bool, Any]:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    async def get_nowait_batch(self, num_items: int) -> tuple[bool, list[Any]]:
        if num_items > self.queue.qsize():
            return False, []
        return True, [self.queue.get_nowait() for _ in range(num_items)]
