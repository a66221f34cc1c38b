"""Hosting an actor in a worker: its instance, how its methods run, how it exits.

Three ways to run methods, chosen at creation:
- *sequential* (a sync actor, max_concurrency 1, no concurrency groups): on the main
  thread, in arrival order, through the executor's queue;
- *threaded* (a sync actor with max_concurrency > 1 or concurrency groups): one thread
  pool per group;
- *async* (any ``async def`` method): an asyncio loop on the main thread, with a
  semaphore per group bounding how many methods run at once.

An actor exits on purpose through ``__ray_terminate__`` or ``exit_actor()``: it runs the
``__ray_shutdown__`` hook, tells the gcs (so it is not restarted), and ends the process.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import logging
import os
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

from manta._private.core_worker.peers import Peers
from manta._private.rpc.messages import ActorExiting, ActorSpec, PushTask
from manta._private.rpc.transport import Reply

if TYPE_CHECKING:
    from manta._private.core_worker.executor import TaskExecutor

logger = logging.getLogger(__name__)

DEFAULT_GROUP = ""
# Methods every actor answers, under the names Ray programs call.
READY_METHOD = "__ray_ready__"
TERMINATE_METHOD = "__ray_terminate__"
SHUTDOWN_HOOK = "__ray_shutdown__"


class ActorExit(BaseException):
    """Raised by ``exit_actor()``; a BaseException so ``except Exception`` cannot swallow it."""


class ActorRuntime:
    def __init__(self, peers: Peers, executor: TaskExecutor, spec: ActorSpec, instance: Any) -> None:
        self._peers = peers
        self._executor = executor
        self.spec = spec
        self.instance = instance
        self.display_name = _display_name(instance, spec.class_name)
        groups = {DEFAULT_GROUP: max(spec.max_concurrency, 1), **spec.concurrency_groups}
        self.is_async = spec.is_async
        self.concurrent = self.is_async or spec.max_concurrency > 1 or bool(spec.concurrency_groups)
        self._pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        if self.is_async:
            self.loop = asyncio.new_event_loop()
            self.loop.set_exception_handler(self._loop_exception)
            for name, limit in groups.items():
                self._semaphores[name] = asyncio.Semaphore(limit)
        elif self.concurrent:
            for name, limit in groups.items():
                self._pools[name] = concurrent.futures.ThreadPoolExecutor(
                    max_workers=limit, thread_name_prefix=f"actor-{name or 'default'}"
                )
        self._exit_lock = threading.Lock()

    # -- dispatch (I/O thread) ------------------------------------------------------------------
    def dispatch(self, push: PushTask, reply: Reply) -> None:
        group = (
            push.spec.concurrency_group if push.spec.concurrency_group in self._groups() else DEFAULT_GROUP
        )
        if self.is_async:
            assert self.loop is not None
            asyncio.run_coroutine_threadsafe(self._run_async(push, reply, group), self.loop)
        else:
            self._pools[group].submit(self._run_threaded, push, reply)

    def _groups(self) -> dict[str, Any]:
        return self._semaphores if self.is_async else self._pools

    def _run_threaded(self, push: PushTask, reply: Reply) -> None:
        since = self._peers.io.last_handoff
        result = self._executor.execute(push)
        self._executor.send_result(reply, result, since)

    async def _run_async(self, push: PushTask, reply: Reply, group: str) -> None:
        async with self._semaphores[group]:
            since = self._peers.io.last_handoff
            result = await self._executor.execute_async(push)
        self._executor.send_result(reply, result, since)

    # -- the main thread ---------------------------------------------------------------------------
    def run_loop(self) -> None:
        """For async actors: serve methods on this thread until the process exits."""
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def method(self, name: str) -> Any:
        if name == READY_METHOD:
            return _ready
        if name == TERMINATE_METHOD:
            return self._terminate
        cls = type(self.instance)
        try:
            static = inspect.getattr_static(cls, name)
        except AttributeError:
            static = None
        if isinstance(static, (staticmethod, classmethod)):
            return getattr(cls, name)
        if inspect.isfunction(static):
            # The class's method, as in Ray, even where an instance attribute shadows its name.
            return types.MethodType(static, self.instance)
        try:
            return getattr(self.instance, name)
        except AttributeError:
            raise AttributeError(f"'{self.spec.class_name}' actor has no method {name!r}") from None

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """exit_actor() in an asyncio task the actor started itself ends the actor too."""
        error = context.get("exception")
        if isinstance(error, ActorExit):
            self.exit(str(error) or "exit_actor() was called")
            return
        loop.default_exception_handler(context)

    def _terminate(self) -> None:
        raise ActorExit("__ray_terminate__ was called")

    def exit(self, reason: str) -> None:
        """End the actor on purpose: run its shutdown hook, tell the gcs, end the process."""
        with self._exit_lock:
            hook = getattr(self.instance, SHUTDOWN_HOOK, None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    logger.exception("%s.%s raised", self.spec.class_name, SHUTDOWN_HOOK)
            try:
                self._peers.call_gcs(ActorExiting(self.spec.actor_id, reason), timeout=5)
            except Exception as e:
                logger.warning("could not tell the gcs that the actor exits: %s", e)
            # A chosen exit runs the process's atexit handlers, as a normal interpreter exit
            # does (and as in Ray); a kill does not.
            atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(0)


def _ready() -> bool:
    return True


def _display_name(instance: Any, class_name: str) -> str:
    """How the actor labels its output: its own __repr__ if it has one (as in Ray)."""
    if type(instance).__repr__ is not object.__repr__:
        try:
            return repr(instance)
        except Exception:
            pass
    return class_name
