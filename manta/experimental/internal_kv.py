"""The cluster's key-value store (Ray's ``ray.experimental.internal_kv``): small values
kept by the gcs, in namespaces, durable when the gcs has persistent storage. Libraries
(and Manta's job service) keep their records here."""

from __future__ import annotations

from manta._private.api.context import require_initialized
from manta._private.rpc import messages as m


def _key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    raise TypeError(f"internal_kv keys must be str or bytes, got {type(key).__name__}")


def _ns(namespace: str | bytes | None) -> str:
    if isinstance(namespace, bytes):
        return namespace.decode()
    return namespace or ""


def _internal_kv_initialized() -> bool:
    from manta._private.api.context import is_initialized

    return is_initialized()


def _internal_kv_get(key: str | bytes, *, namespace: str | bytes | None = None) -> bytes | None:
    worker = require_initialized("reading the internal kv")
    raw = worker.call_gcs(m.KvGet(_ns(namespace), _key(key)))
    return None if raw is None else bytes(raw)


def _internal_kv_exists(key: str | bytes, *, namespace: str | bytes | None = None) -> bool:
    # By listing, not reading: a value (an uploaded package) may be hundreds of MB.
    k = _key(key)
    return k in _internal_kv_list(k, namespace=namespace)


def _internal_kv_put(
    key: str | bytes, value: str | bytes, overwrite: bool = True, *, namespace: str | bytes | None = None
) -> bool:
    """Store ``value`` under ``key``. Returns whether the key existed before (as Ray
    does); with ``overwrite=False`` an existing value is kept."""
    worker = require_initialized("writing the internal kv")
    data = value.encode() if isinstance(value, str) else value
    if not isinstance(data, bytes):
        raise TypeError(f"internal_kv values must be str or bytes, got {type(value).__name__}")
    k, ns = _key(key), _ns(namespace)
    if not overwrite:
        return not worker.call_gcs(m.KvPut(ns, k, data, False))
    existed = worker.call_gcs(m.KvGet(ns, k)) is not None
    worker.call_gcs(m.KvPut(ns, k, data, True))
    return existed


def _internal_kv_del(
    key: str | bytes, *, del_by_prefix: bool = False, namespace: str | bytes | None = None
) -> int:
    """Delete ``key`` (or every key starting with it); returns how many were deleted."""
    worker = require_initialized("deleting from the internal kv")
    k, ns = _key(key), _ns(namespace)
    keys = [bytes(x) for x in worker.call_gcs(m.KvKeys(ns, k))] if del_by_prefix else [k]
    return sum(int(worker.call_gcs(m.KvDel(ns, x))) for x in keys)


def _internal_kv_list(prefix: str | bytes, *, namespace: str | bytes | None = None) -> list[bytes]:
    worker = require_initialized("listing the internal kv")
    return [bytes(x) for x in worker.call_gcs(m.KvKeys(_ns(namespace), _key(prefix)))]
