"""``get``, ``put``, ``wait`` and ``cancel``: argument checking, then the core worker."""

from __future__ import annotations

from typing import Any

from manta._private.api.context import ensure_initialized
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator


def get(object_refs: Any, *, timeout: float | None = None) -> Any:
    """The value of one ref, or a list of values for a list of refs, waiting as needed.

    Raises ``GetTimeoutError`` after ``timeout`` seconds, the task's error (a
    ``RayTaskError`` that is also an instance of the original exception type) if it failed,
    and ``TaskCancelledError``/``WorkerCrashedError``/``ObjectLostError`` when those apply."""
    worker = ensure_initialized()
    if isinstance(object_refs, ObjectRef):
        return worker.objects.get([object_refs], _timeout(timeout))[0]
    if isinstance(object_refs, ObjectRefGenerator):
        return object_refs  # as Ray does: its items are read by iterating it
    if not isinstance(object_refs, list):
        raise ValueError(
            f"Invalid type of object refs, {type(object_refs)}, is given. 'object_refs' must "
            "either be an ObjectRef or a list of ObjectRefs. "
        )
    for ref in object_refs:
        if not isinstance(ref, ObjectRef):
            raise TypeError(f"Attempting to call `get` on the value {ref}, which is not an ObjectRef.")
    if not object_refs:
        return []
    return worker.objects.get(object_refs, _timeout(timeout))


def _timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    return None if timeout < 0 else float(timeout)


def put(value: Any, *, _owner: Any = None) -> ObjectRef:
    """Store ``value`` and return a ref to it, owned by this process."""
    worker = ensure_initialized()
    if isinstance(value, ObjectRef):
        raise TypeError(
            "Calling 'put' on an ObjectRef is not allowed. If you really want to do this, you "
            "can wrap the ObjectRef in a list and call 'put' on it."
        )
    return worker.objects.put(value)


def wait(
    object_refs: Any,
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Wait until ``num_returns`` refs are ready or ``timeout`` passes.

    Refs and ``ObjectRefGenerator``s may be mixed: a generator is ready when ``next`` on it
    would not block (its next item exists, or it has ended).
    Returns ``(ready, not_ready)``, each in the order the refs were given."""
    worker = ensure_initialized()
    if isinstance(object_refs, (ObjectRef, ObjectRefGenerator)):
        raise TypeError(
            "wait() expected a list of ObjectRef or ObjectRefGenerator, got a single ObjectRef or "
            f"ObjectRefGenerator {object_refs!r}"
        )
    if not isinstance(object_refs, list):
        raise TypeError(f"wait() expected a list of ObjectRef or ObjectRefGenerator, got {type(object_refs)}")
    for ref in object_refs:
        if not isinstance(ref, (ObjectRef, ObjectRefGenerator)):
            raise TypeError(
                f"wait() expected a list of ObjectRef or ObjectRefGenerator, got list containing {type(ref)}"
            )
    if timeout is not None and timeout < 0:
        raise ValueError(f"The 'timeout' argument must be nonnegative. Received {timeout}")
    if isinstance(num_returns, bool) or not isinstance(num_returns, int) or num_returns <= 0:
        if object_refs or num_returns != 1:
            raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if not object_refs:
        return [], []
    if len(set(object_refs)) != len(object_refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns > len(object_refs):
        raise ValueError("num_returns cannot be greater than the number of object refs provided to wait.")
    refs = [r for r in object_refs if isinstance(r, ObjectRef)]
    ids = [r.id if isinstance(r, ObjectRef) else r._next_id() for r in object_refs]
    stream_ids = tuple(i for r, i in zip(object_refs, ids, strict=True) if isinstance(r, ObjectRefGenerator))
    ready_ids = worker.objects.wait(refs, num_returns, timeout, fetch_local, stream_ids)
    ready: list[Any] = []
    not_ready: list[Any] = []
    for ref, object_id in zip(object_refs, ids, strict=True):
        if object_id in ready_ids and len(ready) < num_returns:
            ready.append(ref)
        else:
            not_ready.append(ref)
    return ready, not_ready


def cancel(object_ref: Any, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task that creates ``object_ref``.

    A queued task never runs; a running one gets ``KeyboardInterrupt`` raised inside it, or
    with ``force=True`` its worker process is killed. ``get`` then raises
    ``TaskCancelledError``. With ``recursive`` the tasks it submitted are cancelled too.
    Cancelling a finished task does nothing."""
    worker = ensure_initialized()
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref.completed()
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(
            "manta.cancel() only supported for object refs. For actors, try manta.kill(). "
            f"Got: {type(object_ref)}."
        )
    worker.cancel(object_ref, force, recursive)
