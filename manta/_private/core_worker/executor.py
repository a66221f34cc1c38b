"""Running pushed tasks on a worker's main thread.

The I/O thread receives ``PushTask`` and queues it here; the main thread runs tasks one at
a time and hands each ``TaskResult`` back to the I/O thread to send. Cancelling a running
task raises ``KeyboardInterrupt`` inside it (as Ray does), delivered by a signal so that
it interrupts sleeps and blocking waits too; but never inside an import (unlike Ray), which
would leave the module half made for every later task in this process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, NoReturn

from manta._private import serialization
from manta._private.common import log_rotation
from manta._private.common import task_events as te
from manta._private.common.ids import ObjectID, TaskID
from manta._private.common.session import TASK_MARKER
from manta._private.core_worker.actor_runtime import ActorExit, ActorRuntime
from manta._private.core_worker.borrowing import Borrowing
from manta._private.core_worker.function_manager import FunctionManager
from manta._private.core_worker.loop_thread import loop_turns
from manta._private.core_worker.object_manager import ArgumentLost, ObjectManager
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.stream_sender import ItemSender
from manta._private.core_worker.streams import item_id
from manta._private.core_worker.task_context import TaskHost
from manta._private.rpc import codec
from manta._private.rpc.messages import (
    ActorCreated,
    ActorExiting,
    ActorSpec,
    CreateActor,
    PushTask,
    ReturnObject,
    TaskResult,
    TaskSpec,
)
from manta._private.rpc.transport import Reply, send_now_together
from manta.exceptions import RayError, RayTaskError, TaskCancelledError, UnserializableException

logger = logging.getLogger(__name__)

_CANCEL_SIGNAL = signal.SIGUSR1
# Answers held back at most, to be written together (see TaskExecutor._answer), and how
# briefly the next task must have run here last for an answer to wait for it.
_HOLD_AT_MOST = 16
_HOLD_BELOW_S = 0.001
# How often a cancel that found an import, or Manta's own code, under way is tried again.
_CANCEL_RETRY_S = 0.05
# Manta's own code (a lock taken and not yet guarded, a call registered and not yet
# written, a frame half written, state set and not yet restored): a cancel never
# interrupts it, but waits its turn.
_OWN_CODE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_EXHAUSTED = object()


class ExecutorParts(NamedTuple):
    """What a ``TaskExecutor`` is made of (local mode makes one per actor from the same)."""

    peers: Peers
    host: TaskHost  # enters each task's context; knows the actor hosted here
    objects: ObjectManager
    functions: FunctionManager
    borrowing: Borrowing
    requeue_after_s: float


class TaskExecutor:
    # How an actor hosted here runs (local mode hosts actors in the driver: see local_mode).
    runtime_class: type[ActorRuntime] = ActorRuntime

    def __init__(
        self,
        peers: Peers,
        host: TaskHost,
        objects: ObjectManager,
        functions: FunctionManager,
        borrowing: Borrowing,
        requeue_after_s: float,
    ) -> None:
        self._peers = peers
        self._host = host  # enters each task's context; knows the actor hosted here
        self._objects = objects
        self._functions = functions
        self._borrowing = borrowing
        self._queue: queue.SimpleQueue[tuple[PushTask | CreateActor, Reply] | None] = queue.SimpleQueue()
        self._running: TaskID | None = None
        self._cancel_requested: TaskID | None = None
        # Tasks cancelled before they started here (insertion-ordered, bounded).
        self._cancelled_early: dict[TaskID, None] = {}
        # A pipelined task waits behind a running one at most this long, then goes back.
        self._requeue_after = requeue_after_s
        self._requeue_timer: asyncio.TimerHandle | None = None
        self._main_ident = threading.main_thread().ident
        # Per output descriptor, the task name last marked in it and the rotation count
        # then: a rotation swaps the file, and the fresh one is marked again.
        self._marked: dict[int, tuple[str, int]] = {}
        # Calls per function, for max_calls; set once the worker must exit.
        self._calls: dict[bytes, int] = {}
        self._exiting = False
        # The actor this worker hosts, once created.
        self.actor: ActorRuntime | None = None
        # The last running task a cancel reached (``RuntimeContext.is_canceled``).
        self.cancelled: TaskID | None = None
        # Why the actor's constructor called exit_actor(), if it did.
        self.exited_in_constructor = ""
        # Results on their way to the I/O thread (see send_result).
        self._outbox: deque[tuple[Reply, Any]] = deque()
        self._outbox_armed = False
        # Answers held back to be written together with the next ones (see _answer), and
        # how long each function (or method) ran here last.
        self._held: list[tuple[Reply, Any]] = []
        self._held_lock = threading.Lock()
        self._run_times: dict[tuple[bytes, str], float] = {}
        # The task that ran when the requeue timer was armed.
        self._requeue_for: TaskID | None = None

    # -- I/O thread ---------------------------------------------------------------------------
    def enqueue(self, push: PushTask, reply: Reply) -> None:
        actor = self.actor
        if actor is not None and actor.concurrent:
            actor.dispatch(push, reply)
            return
        self._queue.put((push, reply))
        if actor is None:
            self._arm_requeue()

    def _arm_requeue(self) -> None:
        if (self._running is not None or self._held) and self._requeue_timer is None:
            self._requeue_for = self._running
            self._requeue_timer = self._peers.io.loop.call_later(self._requeue_after, self._requeue_due)

    def send_back_queued(self) -> None:
        """I/O thread: return every task that has not started to its owner, now."""
        if self._requeue_timer is not None:
            self._requeue_timer.cancel()
            self._requeue_timer = None
        self._send_held()
        self._send_back_queued()

    def _requeue_due(self) -> None:
        """I/O thread, a period after the timer was armed: answers held back go out; if
        the task that ran then runs still, what waits behind it goes back (see below)."""
        self._requeue_timer = None
        self._send_held()
        running = self._running
        if running is None:
            return
        if running != self._requeue_for:
            self._arm_requeue()  # another task runs now: it gets a whole period too
        elif self.actor is None:  # (an actor's calls are its own: they wait for it)
            self._send_back_queued()

    def _send_held(self) -> None:
        for reply, result in self._take_held():
            reply.send(result)

    def _take_held(self) -> list[tuple[Reply, Any]]:
        with self._held_lock:
            held, self._held = self._held, []
        return held

    def _send_back_queued(self) -> None:
        """I/O thread: tasks pipelined behind a task that runs long (or blocks in get) go back
        to their owners to run elsewhere, so a wrong guess never costs more than a moment
        and tasks that wait for each other never deadlock."""
        if self._running is None:
            return
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._queue.put(None)
                return
            self.send_result(item[1], TaskResult([], False, 0.0, False, True))

    def enqueue_create(self, create: CreateActor, reply: Reply) -> None:
        self._queue.put((create, reply))

    def send_result(self, reply: Reply, result: Any, since: int = -1) -> None:
        """Any thread: answer a pushed task. ``since``: the I/O thread's ``last_handoff``
        when the task started; if this thread handed it nothing since, nothing the task
        caused waits there to go out before the answer, which is then written from this
        thread (no wake-up of the I/O thread) when the connection is free. Otherwise,
        results made while the I/O thread has not yet woken for the last one go with it:
        one wake-up (and one write) for them all."""
        if since == self._peers.io.last_handoff and reply.send_now(result):
            return
        self._outbox.append((reply, result))
        if not self._outbox_armed:
            self._outbox_armed = True
            self._peers.io.call_soon(self._deliver_results)

    def _deliver_results(self) -> None:
        # Disarmed before draining: a result added after the drain arms a new delivery.
        self._outbox_armed = False
        while self._outbox:
            reply, result = self._outbox.popleft()
            reply.send(result)

    def cancel(self, task_id: TaskID, force: bool) -> bool:
        """Cancel ``task_id``: True if it is running here (with ``force`` the owner then
        kills this worker), False if it had not started (it will not)."""
        if self._running == task_id:
            self.cancelled = task_id
            if not force:
                self._cancel_requested = task_id
                assert self._main_ident is not None
                signal.pthread_kill(self._main_ident, _CANCEL_SIGNAL)
            return True
        self._cancelled_early[task_id] = None
        while len(self._cancelled_early) > 1024:
            del self._cancelled_early[next(iter(self._cancelled_early))]
        return False

    def stop(self) -> None:
        self._queue.put(None)

    # -- main thread ----------------------------------------------------------------------------
    def run_forever(self) -> None:
        signal.signal(_CANCEL_SIGNAL, self._on_cancel_signal)
        item = None
        while True:
            if item is None:
                self._write_held()  # nothing waits here: held answers go now
                item = self._queue.get()
            if item is None:
                return
            work, reply = item
            if isinstance(work, CreateActor):
                self._write_held()
                self.send_result(reply, self._create_actor(work))
                if self.exited_in_constructor:
                    atexit._run_exitfuncs()  # a chosen exit, as from a method
                    _flush_std_streams()
                    self._host.exit_after_replies()
                if self.actor is not None and self.actor.is_async:
                    self.actor.run_loop()  # serves the actor's methods from now on
                item = None
                continue
            if self._exiting:
                self.send_result(reply, TaskResult([], False, 0.0, True, True))
                item = None
                continue
            since = self._peers.io.last_handoff
            result = self.execute(work)
            if result.worker_exiting:
                self._write_held()
                self.send_result(reply, result, since)
                self._exiting = True
                self._reject_queued()
                self._host.exit_after_replies()
                item = None
                continue
            item = self._next_nowait()
            self._answer(reply, result, since, item)

    def _next_nowait(self) -> tuple[PushTask | CreateActor, Reply] | None:
        if self._queue.empty():  # (cheaper than the exception, on a submit-then-get path)
            return None
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            self._queue.put(None)  # stop: seen again by the loop once it has answered
        return item

    def _answer(
        self, reply: Reply, result: TaskResult, since: int, following: tuple[Any, Reply] | None
    ) -> None:
        """Main thread: answer a task that ran here. While a task known to take under
        ``_HOLD_BELOW_S`` here follows, the answer is held back and written with the next
        ones, up to ``_HOLD_AT_MOST`` in one write (a system call and a wake-up of the
        owner each saved). Should that task run long after all, the requeue timer sends
        what is held."""
        if since != self._peers.io.last_handoff:
            self._write_held()
            self.send_result(reply, result)  # behind what the task handed the loop
            return
        if following is None and not self._held:
            self.send_result(reply, result, since)  # alone: written from here at once
            return
        with self._held_lock:
            self._held.append((reply, result))
            count = len(self._held)
        if count < _HOLD_AT_MOST and following is not None and self._runs_briefly(following[0]):
            if self._requeue_timer is None:  # (the loop's own call: arming is no hand-off)
                self._peers.io.loop.call_soon_threadsafe(self._arm_requeue)
            return
        self._write_held()

    def _runs_briefly(self, work: PushTask | CreateActor) -> bool:
        if not isinstance(work, PushTask):
            return False
        spec = work.spec
        return self._run_times.get((spec.function_id, spec.method), _HOLD_BELOW_S) < _HOLD_BELOW_S

    def _write_held(self) -> None:
        """Main thread: write the answers held back, each owner's in one write (through
        the loop those whose connection is busy)."""
        if not self._held:
            return
        for reply, result in send_now_together(self._take_held()):
            self.send_result(reply, result)

    def _exit_actor(self, reason: str) -> None:
        assert self.actor is not None
        self._answer_held_before_exit()
        self.actor.exit(reason)

    def _answer_held_before_exit(self) -> None:
        """Before the process ends on purpose: the answers held back (of tasks that ran to
        their end here) go out, and reach the socket before the process is gone."""
        if self._held:
            self._write_held()
            with contextlib.suppress(Exception):  # (a loop already gone sends nothing more)
                self._peers.io.run(loop_turns(), timeout=2)

    def _reject_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self.send_result(item[1], TaskResult([], False, 0.0, True, True))

    def _on_cancel_signal(self, signum: int, frame: Any) -> None:
        running = self._running
        if running is None or self._cancel_requested != running:
            return
        if cancel_waits(frame):
            # Delivered again shortly: it lands once the import, or Manta's step, is done.
            self._peers.io.call_soon(self._peers.io.loop.call_later, _CANCEL_RETRY_S, self._resignal, running)
            return
        self._cancel_requested = None
        raise KeyboardInterrupt(f"task {running.hex()} was cancelled")

    def _resignal(self, task_id: TaskID) -> None:
        if self._running == task_id and self._cancel_requested == task_id and self._main_ident is not None:
            signal.pthread_kill(self._main_ident, _CANCEL_SIGNAL)

    def _create_actor(self, create: CreateActor) -> ActorCreated:
        spec = create.spec
        self._host.actor_id = spec.actor_id
        self._host.actor_placement_group = spec.placement_group
        self._mark_task(spec.class_name)
        task = TaskSpec(
            task_id=TaskID.for_normal_task(spec.job_id),  # fresh per creation: its puts' ids are new
            job_id=spec.job_id,
            parent_task_id=TaskID.for_driver(spec.job_id),
            name=f"{spec.class_name}.__init__",
            function_id=spec.function_id,
            function_name=f"{spec.module}.{spec.class_name}.__init__",
            args=spec.args,
            ref_args=spec.ref_args,
            num_returns=0,
            owner=spec.owner,
            attempt=0,
            resources=spec.resources,
            runtime_env=spec.runtime_env,
            depth=1,
            actor_id=spec.actor_id,
            task_events=spec.task_events,
        )
        context = self._host.enter_task(task, create.instance_ids)
        # Its events go under the id its owner defined it with (the same for every creation).
        recorded = codec.replace(task, task_id=TaskID.for_actor_creation(spec.actor_id))
        self._record_running(recorded)
        try:
            self._host.ensure_runtime_env(spec.runtime_env)
            cls = self._functions.load(spec.job_id, spec.function_id, spec.class_name)
            args, kwargs = self._objects.load_args(task)
            instance = cls(*args, **kwargs)
            self.actor = self.runtime_class(self._peers, self, spec, instance)
            self._host.actor_instance_ids = dict(create.instance_ids)
            self._host.actor_resources = dict(spec.resources)
            self._mark_task(self.actor.display_name)
            if task.task_events:
                self._host.task_events.transition(recorded, te.FINISHED)
            return ActorCreated(True, None)
        except ActorExit as e:
            # exit_actor() in the constructor: the actor ends on purpose, as if it had been
            # made and then exited (the gcs hears it first, so it is not restarted).
            self.exited_in_constructor = str(e) or "exit_actor() was called in its constructor"
            self._announce_exit(spec, self.exited_in_constructor)
            if task.task_events:
                self._host.task_events.transition(recorded, te.FINISHED)  # an end it chose
            return ActorCreated(True, None)
        except BaseException as e:
            task_error = self._task_error(task, e, e)
            if task.task_events:
                self._host.task_events.failed(recorded, e, str(task_error))
                self._host.report_task_events_now()  # the gcs ends this worker when it hears
            return ActorCreated(False, serialization.to_inline(self._serialize_error(task_error)))
        finally:
            self._host.exit_task(context)
            _flush_std_streams()

    def _begin(self, push: PushTask) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """The callable and arguments of a pushed task."""
        spec = push.spec
        if self.actor is not None and spec.actor_id is not None:
            fn = self.actor.method(spec.method)
        else:
            self._host.ensure_runtime_env(spec.runtime_env)
            fn = self._functions.load(spec.job_id, spec.function_id, spec.function_name)
        args, kwargs = self._objects.load_args(spec)
        return fn, args, kwargs

    def execute(self, push: PushTask) -> TaskResult:
        spec = push.spec
        if self._cancelled_early.pop(spec.task_id, 0) is None:
            return self._error_result(spec, TaskCancelledError(spec.task_id.hex()), None)
        if self.actor is None:
            self._mark_task(spec.name)
        started = time.perf_counter()
        main = threading.get_ident() == self._main_ident
        if main:
            # Cancellable from here on, also while its function and arguments load.
            self._running = spec.task_id
            if self.actor is None and self._requeue_timer is None and not self._queue.empty():
                # Tasks were pipelined behind this one before it started: they go back if
                # it runs long, as those queued while it runs do (see enqueue). Arming a
                # timer sends nothing: not a hand-off a reply must wait behind. (A timer
                # armed already watches whichever task runs when it fires.)
                self._peers.io.loop.call_soon_threadsafe(self._arm_requeue)
        context = self._host.enter_task(spec, push.instance_ids)
        self._record_running(spec)
        try:
            fn, args, kwargs = self._begin(push)
            value = fn(*args, **kwargs)
            if spec.generator:
                self._stream_items(spec, value)  # cancellable until its last item
                value = None  # the completion ref's value
            if main:
                self._running = None
            returns = self._store_returns(spec, value)
            if spec.task_events:
                self._host.task_events.transition(spec, te.FINISHED)
            took = time.perf_counter() - started
            self._run_times[spec.function_id, spec.method] = took
            return TaskResult(returns, False, took, self._count_call(spec))
        except ActorExit as e:
            self._exit_actor(str(e) or "exit_actor() was called")
            raise  # not reached: exit() ends the process
        except KeyboardInterrupt as e:
            # A cancellation, or the task interrupting itself: Ray reports both as cancelled.
            cancelled = TaskCancelledError(spec.task_id.hex())
            cancelled.__traceback__ = e.__traceback__
            return self._error_result(spec, cancelled, cancelled)
        except ArgumentLost as e:
            return TaskResult([], False, 0.0, lost_args=[ObjectID.from_hex(e.object_ref_hex)])
        except SystemExit as e:
            # As in Ray, a task calling sys.exit() ends its worker (the owner retries it);
            # in an actor it ends the actor on purpose.
            self._answer_held_before_exit()
            if self.actor is not None:
                self._actor_sys_exit(spec, e)
            _flush_std_streams()
            self._end_process(e)
        except Exception as e:
            return self._error_result(spec, e, e)
        finally:
            if main:
                self._running = None
                self._cancel_requested = None
            self._host.exit_task(context)
            _flush_std_streams()

    async def execute_async(self, push: PushTask) -> TaskResult:
        """An async actor's method, on the actor's event loop."""
        spec = push.spec
        started = time.perf_counter()
        context = self._host.enter_task(spec, push.instance_ids)
        self._record_running(spec)
        try:
            fn, args, kwargs = self._begin(push)
            value = fn(*args, **kwargs)
            if spec.generator:
                await self._stream_items_async(spec, value)
                value = None
            elif inspect.isawaitable(value):
                value = await value
            returns = self._store_returns(spec, value)
            if spec.task_events:
                self._host.task_events.transition(spec, te.FINISHED)
            return TaskResult(returns, False, time.perf_counter() - started)
        except ActorExit as e:
            assert self.actor is not None
            self.actor.exit(str(e) or "exit_actor() was called")
            raise
        except (asyncio.CancelledError, KeyboardInterrupt) as e:
            return self._error_result(spec, TaskCancelledError(spec.task_id.hex()), e)
        except ArgumentLost as e:
            return TaskResult([], False, 0.0, lost_args=[ObjectID.from_hex(e.object_ref_hex)])
        except SystemExit as e:
            self._actor_sys_exit(spec, e)
            raise
        except Exception as e:
            return self._error_result(spec, e, e)
        finally:
            self._host.exit_task(context)

    def _record_running(self, spec: TaskSpec) -> None:
        if spec.task_events:
            self._host.task_events.transition(spec, te.RUNNING)  # here: each report says where

    def _count_call(self, spec: TaskSpec) -> bool:
        """Count a finished call; True when the worker must now exit (max_calls)."""
        if not spec.max_calls:
            return False
        calls = self._calls.get(spec.function_id, 0) + 1
        self._calls[spec.function_id] = calls
        # A worker that owns objects still in use stays (they would die with it).
        return calls >= spec.max_calls and not self._host.owns_objects()

    def _stream_items(self, spec: TaskSpec, items: Any) -> None:
        """Send each item of a generator task to its owner as it is made."""
        if inspect.isasyncgen(items):
            items = _drive_async_generator(items)
        _check_generator(spec, items)
        sender = ItemSender(self._peers.io, self._peers.connect_worker, spec)
        try:
            for index, item in enumerate(items):
                sender.send(index, self._store_return(spec, item_id(spec.task_id, index), item))
        except BaseException:
            with contextlib.suppress(Exception):
                sender.flush()  # the items before the error reach the owner before it does
            raise
        sender.flush()

    async def _stream_items_async(self, spec: TaskSpec, items: Any) -> None:
        if not inspect.isasyncgen(items):
            _check_generator(spec, items)
            items = _as_async(items)
        sender = ItemSender(self._peers.io, self._peers.connect_worker, spec)
        try:
            index = 0
            async for item in items:
                await sender.send_async(index, self._store_return(spec, item_id(spec.task_id, index), item))
                index += 1
        except BaseException:
            with contextlib.suppress(Exception):
                await sender.flush_async()
            raise
        await sender.flush_async()

    def _store_returns(self, spec: TaskSpec, value: Any) -> list[ReturnObject]:
        n = spec.num_returns
        if n == 0:
            return []
        if inspect.isgenerator(value) and not spec.generator:
            return self._store_yields(spec, value)
        if n == 1:  # (every task's path: one return cannot fail part way)
            return [self._store_return(spec, ObjectID.for_return(spec.task_id, 0), value)]
        if not isinstance(value, (tuple, list)) or len(value) != n:
            got = len(value) if isinstance(value, (tuple, list)) else "1 (not a tuple or list)"
            raise ValueError(
                f"{spec.name} returned {got} values, but num_returns={n}: return a tuple "
                f"or list of exactly {n} values"
            )
        return self._store_in_turn(spec, iter(value))[0]

    def _store_in_turn(self, spec: TaskSpec, values: Iterator[Any]) -> tuple[list[ReturnObject], bool]:
        """Store each return as it comes: if one fails (it does not serialize, a generator
        raises or stops short), those before stay readable and the rest hold the error, as
        in Ray (and what the ones before lent and wrote to the store stays accounted for).
        Whether all were stored, too."""
        n = spec.num_returns
        returns: list[ReturnObject] = []
        try:
            for index in range(n):
                item = next(values, _EXHAUSTED)
                if item is _EXHAUSTED:
                    raise ValueError(f"{spec.name} yielded {index} values, but num_returns={n}")
                returns.append(self._store_return(spec, ObjectID.for_return(spec.task_id, index), item))
        except Exception as e:
            if not returns:
                raise
            return returns + self._error_result(spec, e, e, first=len(returns)).returns, False
        return returns, True

    def _store_yields(self, spec: TaskSpec, items: Any) -> list[ReturnObject]:
        """A generator function with a fixed num_returns: each yield is one return, stored
        as it is made (so no more than one value is held in memory at a time)."""
        returns, stored = self._store_in_turn(spec, items)
        try:
            extra = next(items, _EXHAUSTED) if stored else _EXHAUSTED
        except Exception:
            extra = _EXHAUSTED  # (raising past its last return: as Ray, nothing more is read)
        if extra is not _EXHAUSTED:
            # As in Ray, values past num_returns are an error in the worker's log (and so on
            # the driver's screen), not a failure of the task.
            items.close()
            n = spec.num_returns
            print(
                f"Error: {spec.name} yielded more than num_returns={n} values; the values after "
                f"the first {n} are dropped (yield exactly {n}, or use num_returns='streaming')",
                file=sys.stderr,
            )
        return returns

    def _store_return(self, spec: TaskSpec, object_id: ObjectID, value: Any) -> ReturnObject:
        try:
            obj = serialization.serialize(value)
        except Exception as e:
            raise TypeError(
                f"could not serialize the return value of {spec.name} ({type(value).__name__}): {e}"
            ) from e
        return self._objects.store_return(object_id, obj, spec.owner)

    def _error_result(
        self, spec: TaskSpec, error: BaseException, raised: BaseException | None, first: int = 0
    ) -> TaskResult:
        """The task failed: ``error`` in each of its returns from ``first`` on."""
        task_error = self._task_error(spec, error, raised)
        if spec.task_events:
            self._host.task_events.failed(spec, error, str(task_error))
        obj = self._serialize_error(task_error)
        blob = serialization.to_inline(obj)
        # Refs inside the exception are lent to the owner like those inside a value: once
        # for each return that holds it (the owner gives each return's back).
        refs = obj.contained_refs
        returns = [
            ReturnObject(
                ObjectID.for_return(spec.task_id, i),
                blob,
                len(blob),
                None,
                self._borrowing.lend(refs, spec.owner) if refs else None,
            )
            for i in range(first, max(spec.num_returns, 1))
        ]
        return TaskResult(returns, True, 0.0, self._count_call(spec))

    def _task_error(self, spec: TaskSpec, error: BaseException, raised: BaseException | None) -> RayTaskError:
        """The task's failure as a RayTaskError carrying the remote traceback."""
        if raised is not None:
            tb = raised.__traceback__
            # Drop this module's frames: the user wants their own code's traceback.
            while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
                tb = tb.tb_next
            lines = traceback.format_exception(type(raised), raised, tb)
            tb_text = "".join(lines[1:] if lines and lines[0].startswith("Traceback") else lines)
        else:
            tb_text = f"{type(error).__name__}: {error}"
        cause = error.cause if isinstance(error, RayTaskError) else error
        return RayTaskError(
            spec.name,
            tb_text,
            cause,
            pid=os.getpid(),
            ip=self._peers.address.host,
            actor_repr=self.actor.display_name if self.actor is not None else None,
            actor_id=spec.actor_id.hex() if spec.actor_id is not None else None,
            node_id=self._peers.node_id.hex(),
        )

    def _serialize_error(self, task_error: RayTaskError) -> serialization.SerializedObject:
        cause = task_error.cause
        flags = serialization.FLAG_ERROR
        try:
            obj = serialization.serialize(task_error, flags)
        except Exception as e:
            # As in Ray: an exception that does not pickle arrives as a RayTaskError with its
            # traceback, and a RayError saying so in the original's place.
            task_error.cause = RayError(
                f"The original cause of the RayTaskError ({type(cause).__name__}) isn't serializable: "
                f"{e}. Overwriting the cause to a RayError; the traceback above is the original's."
            )
            return serialization.serialize(task_error, flags)
        try:
            serialization.deserialize(obj.data, obj.buffers)  # what pickles may still not unpickle
            return obj
        except Exception:
            return serialization.serialize(UnserializableException(str(task_error)), flags)

    def _actor_sys_exit(self, spec: TaskSpec, exiting: SystemExit) -> None:
        """An actor's method called sys.exit(): the actor ends (on purpose: it is not
        restarted), and its driver hears that its worker died under a call, as in Ray."""
        assert self.actor is not None
        reason = f"sys.exit({exiting.code!r}) was called"
        self._peers.push_error(
            "worker_died",
            f"The worker of actor {self.actor.display_name} died or was killed while executing "
            f"{spec.name}: {reason} (pid {os.getpid()}).",
        )
        self.actor.exit(reason)

    def _announce_exit(self, spec: ActorSpec, reason: str) -> None:
        try:
            self._peers.call_gcs(ActorExiting(spec.actor_id, reason), timeout=5)
        except Exception as error:
            logger.warning("could not tell the gcs that the actor exits: %s", error)

    def _end_process(self, exiting: SystemExit) -> NoReturn:
        os._exit(exiting.code if isinstance(exiting.code, int) else 1)

    def _mark_task(self, name: str) -> None:
        mark_outputs(self._marked, name, ((sys.stdout, 1), (sys.stderr, 2)), log_rotation.rotation_count())


def mark_outputs(
    marked: dict[int, tuple[str, int]], name: str, outputs: Iterable[tuple[Any, int]], rotations: int
) -> None:
    """Write a task marker for ``name`` to each (stream, descriptor) of ``outputs`` not
    last marked with it since this process's ``rotations``-th log rotation. The file
    counts, not just the name: after a rotation (log_rotation) a fresh file is under the
    descriptor, and a reader of that file alone (its older copies may be gone) must still
    see which task wrote it."""
    for stream, fd in outputs:
        if marked.get(fd) == (name, rotations):
            continue
        marked[fd] = (name, rotations)  # once per file even where marking fails (a terminal)
        try:
            stream.flush()
            size = os.fstat(fd).st_size
            needs_newline = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            os.write(fd, (("\n" if needs_newline else "") + TASK_MARKER + name + "\n").encode())
        except (OSError, ValueError, AttributeError):
            pass  # not a regular file (e.g. a terminal in tests): nothing to label


def _check_generator(spec: TaskSpec, items: Any) -> None:
    if not isinstance(items, Iterator):
        raise TypeError(
            f"{spec.name} was called as a generator task (num_returns='streaming' or 'dynamic') "
            f"but returned {type(items).__name__}, not a generator: use 'yield' in it"
        )


def _drive_async_generator(items: Any) -> Iterator[Any]:
    """The items of an async generator task, on an event loop of its own."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(items.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


async def _as_async(items: Iterator[Any]) -> Any:
    for item in items:
        yield item


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def cancel_waits(frame: Any) -> bool:
    """Whether a cancel that arrives while ``frame`` runs waits its turn: inside an import,
    or in Manta's own code (a task blocked in ``get`` waits in ``threading``'s code)."""
    if frame is None:
        return False
    return frame.f_code.co_filename.startswith(_OWN_CODE) or _importing(frame)


def _importing(frame: Any) -> bool:
    """Whether ``frame`` runs inside an import (a module's top level, or the import
    machinery itself)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
