"""Where the gcs keeps its tables, behind one small interface.

Tables are namespaces of bytes keys to bytes values. ``MemoryStorage`` is the default
(state dies with the process); durable backends (sqlite, redis) implement the same four
methods so a restarted gcs can reload its tables.
"""

from __future__ import annotations

from typing import Protocol


class Storage(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        """Store ``value``; returns False (and stores nothing) if the key exists and
        ``overwrite`` is False."""
        ...

    def delete(self, table: str, key: bytes) -> bool: ...

    def keys(self, table: str, prefix: bytes = b"") -> list[bytes]: ...


class MemoryStorage:
    def __init__(self) -> None:
        self._tables: dict[str, dict[bytes, bytes]] = {}

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._tables.get(table, {}).get(key)

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        rows = self._tables.setdefault(table, {})
        if not overwrite and key in rows:
            return False
        rows[key] = value
        return True

    def delete(self, table: str, key: bytes) -> bool:
        return self._tables.get(table, {}).pop(key, None) is not None

    def keys(self, table: str, prefix: bytes = b"") -> list[bytes]:
        return [k for k in self._tables.get(table, {}) if k.startswith(prefix)]


def open_storage(url: str) -> Storage:
    """``memory://`` (default). Durable backends arrive with the multi-node issue."""
    if url in ("", "memory", "memory://"):
        return MemoryStorage()
    raise ValueError(f"unsupported gcs storage {url!r}: use memory://")
