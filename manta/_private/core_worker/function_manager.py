"""Exporting remote functions once per job, and loading them once per worker.

The driver pickles a function the first time it is called remotely in a job and stores
it in the gcs key-value store under a content hash; task specs carry only that id.
Workers fetch by id on first use and keep the unpickled function.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

from manta._private import serialization
from manta._private.common.ids import JobID

FUNCTION_NAMESPACE = "fn"


def function_key(job_id: JobID, function_id: bytes) -> bytes:
    return bytes(job_id) + function_id


# A function (or class) that pickles larger than this earns a warning: it most likely
# captured a large value from its scope (Ray's threshold).
LARGE_FUNCTION_BYTES = 10**7


class FunctionManager:
    def __init__(
        self,
        kv_put: Callable[[str, bytes, bytes], None],
        kv_get: Callable[[str, bytes], bytes | None],
        warn: Callable[[str, str], None] = lambda kind, text: None,
    ) -> None:
        self._kv_put = kv_put
        self._kv_get = kv_get
        self._warn = warn
        self._lock = threading.Lock()
        self._exported: dict[tuple[JobID, bytes], None] = {}
        self._loaded: dict[tuple[JobID, bytes], Any] = {}

    @staticmethod
    def pickle_function(fn: Any) -> tuple[bytes, bytes]:
        """(function id, pickled function). Raises TypeError naming what failed to pickle.

        Refs the function captures are kept for as long as this process lives: any number
        of workers may load it, at any time."""
        try:
            pickled, refs = serialization.dumps_collecting(fn)
        except Exception as e:
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(
                f"could not pickle the remote function or class {name}: {e}. Everything it "
                "uses from the enclosing scope is pickled with it; create unpicklable "
                "objects (locks, sockets, clients) inside it instead."
            ) from e
        for ref in refs:
            ref.pin_for_life()
        return hashlib.sha1(pickled).digest(), pickled

    def export(self, job_id: JobID, function_id: bytes, pickled: bytes, original: Any = None) -> None:
        """Store the function for this job unless it already is. Blocks until stored.
        ``original``, the function itself, is what this process runs for that id (local
        mode runs tasks in the driver: with the driver's own function and its globals)."""
        key = (job_id, function_id)
        if original is not None:
            self._loaded.setdefault(key, original)
        if key in self._exported:
            return
        with self._lock:
            if key in self._exported:
                return
            self._kv_put(FUNCTION_NAMESPACE, function_key(job_id, function_id), pickled)
            self._exported[key] = None
        if len(pickled) > LARGE_FUNCTION_BYTES:
            name = getattr(original, "__qualname__", "a remote function")
            self._warn(
                "pickling_large_object",
                f"Warning: the remote function or class {name} is very large "
                f"({len(pickled) / 2**20:.1f} MiB pickled). Check that it does not capture a large "
                "array or other object from its scope: put large values in the object store "
                "(manta.put) and pass their refs instead.",
            )

    def load(self, job_id: JobID, function_id: bytes, name: str) -> Any:
        key = (job_id, function_id)
        fn = self._loaded.get(key)
        if fn is not None:
            return fn
        pickled = self._kv_get(FUNCTION_NAMESPACE, function_key(job_id, function_id))
        if pickled is None:
            raise RuntimeError(
                f"the definition of {name} was not found in the cluster; its driver may have exited"
            )
        fn = cloudpickle.loads(pickled)
        self._loaded[key] = fn
        return fn
