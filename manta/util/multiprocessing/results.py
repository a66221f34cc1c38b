"""What a ``Pool`` hands back: ``AsyncResult`` for apply/map, ``IMapIterator`` for imap.

Both follow ``multiprocessing.pool``: ``get`` and ``next`` take a timeout and raise
``multiprocessing.TimeoutError``; a failed call re-raises its own exception (with the
remote traceback as its ``__cause__``, as multiprocessing does), not a wrapper.

Callbacks run on one thread at a time, as multiprocessing's result-handler thread runs
them, so a callback that appends to a list needs no lock. That thread exists only while
results are arriving: it drains a queue the ObjectRefs' futures fill and exits when the
queue is empty, so an idle pool holds no thread.
"""

from __future__ import annotations

import functools
import itertools
import logging
import multiprocessing
import multiprocessing.pool
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import manta
from manta.exceptions import RayTaskError

if TYPE_CHECKING:
    from manta.util.multiprocessing.pool import Pool

logger = logging.getLogger(__name__)


def unwrap_error(error: BaseException) -> BaseException:
    """The exception the pooled function raised, as multiprocessing raises it: its own
    type, with the remote traceback (and where it ran) as ``__cause__``."""
    if isinstance(error, RayTaskError) and isinstance(error.cause, BaseException):
        cause = error.cause
        # RemoteTraceback is undocumented (and untyped) but is what multiprocessing uses.
        cause.__cause__ = multiprocessing.pool.RemoteTraceback(str(error))  # type: ignore[attr-defined]
        return cause
    return error


class Deliveries:
    """Runs completion handlers one at a time, off the threads that resolve futures."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[tuple[Callable[[Future[Any]], None], Future[Any]]] = deque()
        self._pending = 0
        self._draining = False

    def watch(self, future: Future[Any], handler: Callable[[Future[Any]], None]) -> None:
        """Call ``handler(future)`` on the delivery thread once ``future`` is done."""
        with self._cond:
            self._pending += 1
        future.add_done_callback(functools.partial(self._arrived, handler))

    def _arrived(self, handler: Callable[[Future[Any]], None], future: Future[Any]) -> None:
        with self._cond:
            self._queue.append((handler, future))
            if self._draining:
                return
            self._draining = True
        threading.Thread(target=self._drain, name="manta-pool-results", daemon=True).start()

    def _drain(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    # Decided under the lock _arrived takes: a later arrival starts a thread.
                    self._draining = False
                    return
                handler, future = self._queue.popleft()
            try:
                handler(future)
            except Exception:  # a bug in a handler must not stop later deliveries
                logger.exception("Error while delivering a pool result")
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every watched future has been handled; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)


class AsyncResult:
    """The pending result of ``apply_async``, ``map_async`` or ``starmap_async``."""

    def __init__(
        self,
        pool: Pool,
        refs: list[manta.ObjectRef],
        *,
        single: bool,
        callback: Callable[[Any], object] | None,
        error_callback: Callable[[BaseException], object] | None,
    ) -> None:
        self._pool = pool
        self._single = single
        self._callback = callback
        self._error_callback = error_callback
        self._event = threading.Event()
        self._chunks: list[Any] = [None] * len(refs)
        self._remaining = len(refs)
        self._value: Any = None
        self._error: BaseException | None = None
        if not refs:  # map over nothing
            self._value = []
            self._run_callback(self._callback, self._value)
            self._event.set()
        for index, ref in enumerate(refs):
            pool._deliveries.watch(ref.future(), functools.partial(self._chunk_done, index))

    def _chunk_done(self, index: int, future: Future[Any]) -> None:
        if self._event.is_set():  # an earlier chunk failed: the result is decided
            return
        error = future.exception()
        if error is not None:
            self._error = unwrap_error(error)
            self._finish(self._error_callback, self._error)
            return
        self._chunks[index] = future.result()
        self._remaining -= 1
        if self._remaining == 0:
            if self._single:
                self._value = self._chunks[0]
            else:
                self._value = list(itertools.chain.from_iterable(self._chunks))
            self._chunks = []
            self._finish(self._callback, self._value)

    def _finish(self, callback: Callable[[Any], object] | None, argument: Any) -> None:
        try:
            # As in multiprocessing, get() returns only after the callback has run.
            if not self._pool._terminated:
                self._run_callback(callback, argument)
        finally:
            self._event.set()

    @staticmethod
    def _run_callback(callback: Callable[[Any], object] | None, argument: Any) -> None:
        if callback is None:
            return
        try:
            callback(argument)
        except Exception:
            logger.exception("Exception in a Pool callback")

    def ready(self) -> bool:
        """Whether the call has finished (successfully or not)."""
        return self._event.is_set()

    def successful(self) -> bool:
        """Whether the call finished without raising; ValueError if it is not done yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is ready or ``timeout`` seconds have passed."""
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        """The result; re-raises the call's exception; ``multiprocessing.TimeoutError``
        when it is not ready within ``timeout`` seconds."""
        if not self._event.wait(timeout):
            raise multiprocessing.TimeoutError
        if self._error is not None:
            raise self._error
        return self._value


class IMapIterator:
    """Results of ``imap`` (in order) or ``imap_unordered`` (as they finish).

    The input is read lazily: at most one chunk per pool process is in flight, and the
    process that finishes a chunk gets the next, so a slow process holds back no other.
    ``Pool.close()`` submits what is left of the input, since closing lets outstanding work
    finish. A chunk that raised re-raises at its place; iteration can go on after it.
    """

    def __init__(
        self, pool: Pool, func: Any, iterable: Any, chunksize: int, *, star: bool, ordered: bool
    ) -> None:
        self._pool = pool
        self._func = func
        self._items: Iterator[Any] | None = iter(iterable)
        self._chunksize = chunksize
        self._star = star
        self._ordered = ordered
        self._lock = threading.Lock()
        # ref -> (chunk number, the pool slot it runs on; None: any)
        self._in_flight: dict[manta.ObjectRef, tuple[int, int | None]] = {}
        self._submitted = 0
        self._finished: dict[int, tuple[bool, Any]] = {}  # chunk number -> (ok, values | error)
        self._next_chunk = 0  # the next chunk to yield from, when ordered
        self._ready: deque[tuple[bool, Any]] = deque()
        with self._lock:
            for slot in range(pool._processes):
                if not self._submit_chunk(slot):
                    break

    @property
    def exhausted(self) -> bool:
        """Whether all of the input has been submitted."""
        return self._items is None

    def _read_chunk(self) -> list[Any]:
        if self._items is None:
            return []
        chunk = list(itertools.islice(self._items, self._chunksize))
        if len(chunk) < self._chunksize:
            self._items = None
        return chunk

    def _submit_chunk(self, slot: int | None) -> bool:
        chunk = self._read_chunk()
        if not chunk:
            return False
        ref = self._pool._submit_chunk(self._func, chunk, self._star, slot)
        self._in_flight[ref] = (self._submitted, slot)
        self._submitted += 1
        return True

    def submit_rest(self) -> None:
        """Submit every remaining chunk now (the pool is closing)."""
        with self._lock:
            while self._submit_chunk(None):
                pass

    def __iter__(self) -> IMapIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        """The next result; ``multiprocessing.TimeoutError`` if none comes within
        ``timeout`` seconds; StopIteration at the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._collect_in_order()
                if self._ready:
                    ok, value = self._ready.popleft()
                    if not ok:
                        raise value
                    return value
                if not self._in_flight:
                    raise StopIteration
                refs = list(self._in_flight)
            # Not under the lock: close() may submit the rest of the input meanwhile.
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = manta.wait(refs, num_returns=1, timeout=remaining)
            if not done:
                raise multiprocessing.TimeoutError
            with self._lock:
                for ref in done:
                    if ref in self._in_flight:  # another consumer may have taken it
                        self._chunk_done(ref)

    def _chunk_done(self, ref: manta.ObjectRef) -> None:
        number, slot = self._in_flight.pop(ref)
        try:
            outcome: tuple[bool, Any] = (True, manta.get(ref))
        except Exception as e:
            outcome = (False, unwrap_error(e))
        if self._ordered:
            self._finished[number] = outcome
        else:
            self._queue_outcome(outcome)
        if not self._pool._closed:
            self._submit_chunk(slot)

    def _collect_in_order(self) -> None:
        while self._next_chunk in self._finished:
            self._queue_outcome(self._finished.pop(self._next_chunk))
            self._next_chunk += 1

    def _queue_outcome(self, outcome: tuple[bool, Any]) -> None:
        ok, values = outcome
        if ok:
            self._ready.extend((True, v) for v in values)
        else:
            self._ready.append(outcome)
