"""``Pool``: the ``multiprocessing.Pool`` API on the cluster (Ray's ``ray.util.multiprocessing``).

Each process of the pool is an actor, not a task. Two promises of ``multiprocessing.Pool``
need a process that lives across calls: ``initializer`` runs once per process and may set
up state (module globals, a connection) that later calls use, and ``maxtasksperchild``
replaces a process after that many tasks. An actor is such a process, and being one
process it runs one call at a time, so ``processes`` bounds the parallelism as it does in
multiprocessing. Tasks would run the initializer per call and spread work over however many
workers the scheduler picks.

Work goes out in chunks (``chunksize`` items per actor call), round robin over the actors
for ``map``/``starmap``/``apply``; ``imap`` keeps one chunk in flight per actor and gives
the next chunk to the actor that finished. As in Ray, the actors reserve no CPU by default
(``ray_remote_args`` changes that), so a pooled function may itself start tasks without
starving them, and ``processes`` may not exceed the cluster's CPUs.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import manta
from manta._private.api.discovery import resolve_address
from manta._private.common.config import Config
from manta.exceptions import RayActorError, RayTaskError
from manta.util.multiprocessing.results import AsyncResult, Deliveries, IMapIterator, unwrap_error

logger = logging.getLogger(__name__)


class PoolProcess:
    """One process of a pool, run as an actor."""

    def __init__(self, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
        self._namespaces: dict[str, dict[str, Any]] = {}
        if initializer is not None:
            self._bind(initializer)(*initargs)

    def _bind(self, func: Any) -> Any:
        return share_module_globals(func, self._namespaces, {})

    def ready(self) -> None:
        """Answers once the constructor (and so the initializer) has run."""

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._bind(func)(*args, **kwargs)

    def map_chunk(self, func: Callable[..., Any], items: list[Any], star: bool) -> list[Any]:
        func = self._bind(func)
        if star:
            return [func(*item) for item in items]
        return [func(item) for item in items]


def share_module_globals(func: Any, namespaces: dict[str, dict[str, Any]], memo: dict[int, Any]) -> Any:
    """``func``, reading and writing the one namespace this process keeps for its module.

    cloudpickle ships a function of ``__main__`` (or of a module workers cannot import) by
    value, with a fresh dict of the globals it uses, every time: the globals an
    ``initializer`` sets would be invisible to the functions the pool runs later. Bound to
    one namespace per module, they see each other's globals, as in a forked process. A
    global already in the namespace keeps its value (it may have been set by the
    initializer); the functions among the globals are bound the same way.
    """
    if not isinstance(func, types.FunctionType):
        return func
    module = sys.modules.get(func.__module__ or "")
    if module is not None and func.__globals__ is vars(module):
        return func  # shipped by reference: its module is the shared namespace already
    if id(func) in memo:
        return memo[id(func)]
    namespace = namespaces.setdefault(func.__module__ or "", {})
    bound = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
    bound.__kwdefaults__ = func.__kwdefaults__
    bound.__qualname__ = func.__qualname__
    bound.__module__ = func.__module__
    bound.__doc__ = func.__doc__
    bound.__dict__.update(func.__dict__)
    memo[id(func)] = bound
    for name, value in func.__globals__.items():
        if name not in namespace:
            namespace[name] = share_module_globals(value, namespaces, memo)
    return bound


_PoolActor = manta.remote(num_cpus=0)(PoolProcess)


@dataclass
class _Slot:
    actor: Any
    tasks: int = 0


def _connect(processes: int | None, address: str | None) -> None:
    """Start or join a cluster unless this process is connected already (as Ray's pool
    does): a new local cluster gets ``processes`` CPUs."""
    if manta.is_initialized():
        return
    if resolve_address(address, Config.from_env()) is None:
        manta.init(address=address, num_cpus=processes)
    else:
        manta.init(address=address)


class Pool:
    """A pool of worker actors that runs functions in parallel, like ``multiprocessing.Pool``.

    Args:
        processes: how many actors (default: the cluster's CPUs). More than the cluster's
            CPUs is refused, as in Ray.
        initializer: called as ``initializer(*initargs)`` in each actor when it starts
            (again in the actors that replace retired ones).
        initargs: the initializer's arguments.
        maxtasksperchild: replace an actor after it ran this many tasks (chunks), letting
            it finish them first. None: never.
        context: accepted for compatibility with ``multiprocessing.Pool`` and ignored.
        ray_address: the cluster to join when this process is not connected yet (else a
            local cluster is started).
        ray_remote_args: options for the actors (``num_cpus``, ``resources``,
            ``scheduling_strategy``, ...), as in ``@manta.remote``.

    Raises:
        ValueError: ``processes`` is not positive or exceeds the cluster's CPUs, or
            ``maxtasksperchild`` is not a positive int.
        TypeError: ``initializer`` is not callable.
        Whatever the initializer raised (with the remote traceback as its cause), when it
            fails in an actor; multiprocessing would restart the process for ever.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] | None = None,
        maxtasksperchild: int | None = None,
        context: Any = None,
        ray_address: str | None = None,
        ray_remote_args: Mapping[str, Any] | None = None,
    ) -> None:
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int)
            or isinstance(maxtasksperchild, bool)
            or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if context is not None:
            logger.warning("Pool ignores the 'context' argument: Manta starts the pool's processes.")
        self._closed = False
        self._terminated = False
        self._lock = threading.Lock()
        self._deliveries = Deliveries()
        self._initializer = initializer
        self._initargs = tuple(initargs or ())
        self._maxtasksperchild = maxtasksperchild
        self._actor_class = _PoolActor.options(**ray_remote_args) if ray_remote_args else _PoolActor
        # Retired actors still finishing their calls: __ray_terminate__'s ref -> handle.
        self._exiting: dict[manta.ObjectRef, Any] = {}
        self._iterators: list[IMapIterator] = []
        self._processes = self._size(processes, ray_address)
        self._slots: list[_Slot] = []
        self._next_slot = 0
        try:
            for _ in range(self._processes):
                self._slots.append(_Slot(self._actor_class.remote(self._initializer, self._initargs)))
            # Surface a failing initializer (or unplaceable actors) here, not at the first map.
            manta.get([slot.actor.ready.remote() for slot in self._slots])
        except BaseException as e:
            self._kill_all()
            if isinstance(e, RayActorError) and isinstance(e.cause, RayTaskError):
                raise unwrap_error(e.cause) from None  # the initializer's own exception
            raise

    @staticmethod
    def _size(processes: int | None, address: str | None) -> int:
        if processes is not None and (not isinstance(processes, int) or processes <= 0):
            raise ValueError("Processes in the pool must be >0.")
        _connect(processes, address)
        cpus = int(manta.cluster_resources().get("CPU", 0))
        if processes is None:
            processes = cpus
            if processes <= 0:
                raise ValueError("Processes in the pool must be >0.")
        if processes > cpus:
            raise ValueError(
                f"Tried to start a pool with {processes} processes on an existing ray cluster, "
                f"but there are only {cpus} CPUs in the ray cluster."
            )
        return processes

    # -- submission ------------------------------------------------------------------------
    def _check_running(self) -> None:
        if self._closed:
            raise ValueError("Pool not running")

    def _submit(self, slot_index: int | None, method: str, *args: Any) -> manta.ObjectRef:
        """Call ``method`` on the actor of ``slot_index`` (the next in turn when None)."""
        with self._lock:
            if self._terminated or not self._slots:
                raise ValueError("Pool not running")
            if slot_index is None:
                slot_index = self._next_slot
                self._next_slot = (slot_index + 1) % len(self._slots)
            slot = self._slots[slot_index]
            ref: manta.ObjectRef = getattr(slot.actor, method).remote(*args)
            slot.tasks += 1
            if self._maxtasksperchild is not None and slot.tasks >= self._maxtasksperchild:
                # Runs after the calls already queued on the actor; its successor takes over.
                self._retire(slot.actor)
                self._slots[slot_index] = _Slot(self._actor_class.remote(self._initializer, self._initargs))
            return ref

    def _retire(self, actor: Any) -> None:
        if self._exiting:
            gone, _ = manta.wait(list(self._exiting), num_returns=len(self._exiting), timeout=0)
            for ref in gone:
                del self._exiting[ref]
        self._exiting[actor.__ray_terminate__.remote()] = actor

    def _submit_chunk(
        self, func: Any, chunk: list[Any], star: bool, slot_index: int | None
    ) -> manta.ObjectRef:
        return self._submit(slot_index, "map_chunk", func, chunk, star)

    def _map_refs(
        self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int | None, star: bool
    ) -> list[manta.ObjectRef]:
        self._check_running()
        items = iterable if isinstance(iterable, list | tuple) else list(iterable)
        if chunksize is None:
            # multiprocessing's choice: about four chunks per process.
            chunksize, extra = divmod(len(items), len(self._slots) * 4)
            chunksize += bool(extra)
        elif not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        chunks = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)] if items else []
        # One copy of the function in the object store, not one per chunk.
        shared = manta.put(func) if len(chunks) > 1 else func
        return [self._submit_chunk(shared, chunk, star, None) for chunk in chunks]

    # -- the multiprocessing.Pool API ------------------------------------------------------
    def apply(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] | None = None,
        kwds: Mapping[str, Any] | None = None,
        *,
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """``func(*args, **kwds)`` on one of the pool's actors; returns its result.
        (``kwargs=`` is Ray's name for ``kwds``.)"""
        return self.apply_async(func, args, kwds, kwargs=kwargs).get()

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] | None = None,
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        *,
        kwargs: Mapping[str, Any] | None = None,
    ) -> AsyncResult:
        """Like ``apply``, without waiting. ``callback(result)`` or
        ``error_callback(exception)`` runs once the call finishes."""
        self._check_running()
        if kwds is not None and kwargs is not None:
            raise TypeError("pass the keyword arguments as kwds or as kwargs, not both")
        keywords = dict(kwds if kwds is not None else kwargs or {})
        ref = self._submit(None, "call", func, tuple(args or ()), keywords)
        return AsyncResult(self, [ref], single=True, callback=callback, error_callback=error_callback)

    def map(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int | None = None
    ) -> list[Any]:
        """``[func(x) for x in iterable]``, in parallel, in order. The first failure
        re-raises here."""
        return self.map_async(func, iterable, chunksize).get()  # type: ignore[no-any-return]

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Like ``map``, without waiting. ``callback(results)`` runs once all succeed;
        ``error_callback(exception)`` at the first failure."""
        refs = self._map_refs(func, iterable, chunksize, star=False)
        return AsyncResult(self, refs, single=False, callback=callback, error_callback=error_callback)

    def starmap(
        self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]], chunksize: int | None = None
    ) -> list[Any]:
        """``[func(*args) for args in iterable]``, in parallel, in order."""
        return self.starmap_async(func, iterable, chunksize).get()  # type: ignore[no-any-return]

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Like ``starmap``, without waiting (callbacks as for ``map_async``)."""
        refs = self._map_refs(func, iterable, chunksize, star=True)
        return AsyncResult(self, refs, single=False, callback=callback, error_callback=error_callback)

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1) -> IMapIterator:
        """An iterator over ``func(x)`` for ``x`` in ``iterable``, in order, reading the
        input lazily."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1
    ) -> IMapIterator:
        """Like ``imap``, yielding results as they finish."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int, ordered: bool
    ) -> IMapIterator:
        self._check_running()
        if not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        iterator = IMapIterator(self, manta.put(func), iterable, chunksize, star=False, ordered=ordered)
        with self._lock:
            self._iterators = [it for it in self._iterators if not it.exhausted]
            self._iterators.append(iterator)
        return iterator

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Accept no more work; the work already submitted finishes, then the actors exit."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            iterators, self._iterators = self._iterators, []
        for iterator in iterators:
            iterator.submit_rest()
        with self._lock:
            for slot in self._slots:
                self._retire(slot.actor)
            self._slots = []

    def terminate(self) -> None:
        """Stop at once: the actors are killed, work in progress is lost (its results
        raise ``ActorDiedError``) and no more callbacks run."""
        self._closed = True
        self._terminated = True
        self._kill_all()

    def _kill_all(self) -> None:
        with self._lock:
            actors = [slot.actor for slot in self._slots] + list(self._exiting.values())
            self._slots, self._exiting = [], {}
        for actor in actors:
            try:
                manta.kill(actor)
            except Exception as e:  # e.g. the cluster is already gone
                logger.debug("Could not kill pool actor: %s", e)

    def join(self) -> None:
        """Wait for a closed pool's work and callbacks to finish and its actors to exit.

        Raises:
            ValueError: the pool was neither closed nor terminated.
        """
        if not self._closed:
            raise ValueError("Pool is still running")
        if self._terminated:
            return
        with self._lock:
            exiting = list(self._exiting)
        if exiting:
            manta.wait(exiting, num_returns=len(exiting))
        self._deliveries.wait_idle()
        with self._lock:
            self._exiting = {}

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # As multiprocessing.Pool does: leaving the block terminates the pool.
        self.terminate()

    def __repr__(self) -> str:
        state = "TERMINATED" if self._terminated else "CLOSED" if self._closed else "RUNNING"
        return f"<{type(self).__module__}.Pool state={state} pool_size={self._processes}>"


__all__ = ["AsyncResult", "IMapIterator", "Pool"]
