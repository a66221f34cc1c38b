"""The worker's side of a generator task: each item goes to the task's owner as it is made.

Items are sent without waiting for their replies, unless the task has backpressure: then
the worker waits for each item's reply, which its owner holds back while too many items
wait unread. Before the task's own reply goes out, every item has been acknowledged, so
the owner has all of them by the time it learns the task ended (the two travel on
different connections).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any

from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.rpc.messages import Address, GeneratorItem, ReturnObject, TaskSpec
from manta._private.rpc.transport import Connection


class ItemSender:
    def __init__(
        self, io: EventLoopThread, connect: Callable[[Address], Awaitable[Connection]], spec: TaskSpec
    ) -> None:
        self._io = io
        self._connect = connect
        self._owner = spec.owner
        self._task_id = spec.task_id
        self._wait_each = spec.backpressure > 0
        self._unacknowledged: list[concurrent.futures.Future[Any]] = []

    def _submit(self, index: int, item: ReturnObject) -> concurrent.futures.Future[Any]:
        return self._io.submit(self._send(GeneratorItem(self._task_id, index, item)))

    async def _send(self, msg: GeneratorItem) -> Any:
        conn = await self._connect(self._owner)
        return await conn.call(msg)

    def _track(self, reply: concurrent.futures.Future[Any]) -> None:
        pending = self._unacknowledged
        pending.append(reply)
        if len(pending) >= 1024:  # keep the list short on long streams; surface failures early
            for done in [f for f in pending if f.done()]:
                pending.remove(done)
                done.result()

    def send(self, index: int, item: ReturnObject) -> None:
        """From the task's thread; returns once the owner lets the task go on."""
        reply = self._submit(index, item)
        if self._wait_each:
            reply.result()
        else:
            self._track(reply)

    async def send_async(self, index: int, item: ReturnObject) -> None:
        """From an async actor's event loop."""
        reply = self._submit(index, item)
        if self._wait_each:
            await asyncio.wrap_future(reply)
        else:
            self._track(reply)

    def flush(self) -> None:
        """Wait until the owner has every item sent so far."""
        pending, self._unacknowledged = self._unacknowledged, []
        for reply in pending:
            reply.result()

    async def flush_async(self) -> None:
        pending, self._unacknowledged = self._unacknowledged, []
        for reply in pending:
            await asyncio.wrap_future(reply)
