"""Where the gcs keeps its tables, behind one small interface.

Tables are namespaces of bytes keys to bytes values. ``MemoryStorage`` is the default
(state dies with the process); ``SqliteStorage`` (one local file) and ``RedisStorage`` (a
shared redis server) implement the same methods so a restarted gcs can reload its tables.
``open_storage`` turns the gcs's ``--storage`` URL into one of them.

Errors: a backend that cannot be opened raises ValueError (a malformed URL or an unusable
path) or ConnectionError (redis not answering). Once open, a backend that stops working
raises OSError (ConnectionError or TimeoutError for redis); retrying is the caller's choice.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

ACCEPTED_URLS = (
    "memory://, sqlite:///absolute/path.db or redis://[:password@]host[:port][/db][?namespace=name]"
)


class Storage(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        """Store ``value``; returns False (and stores nothing) if the key exists and
        ``overwrite`` is False. The check and the store are one atomic step."""
        ...

    def delete(self, table: str, key: bytes) -> bool: ...

    def keys(self, table: str, prefix: bytes = b"") -> list[bytes]: ...

    def close(self) -> None:
        """Release files and connections; the storage is not used afterwards."""
        ...


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

    def close(self) -> None:
        pass


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``prefix``, or
    None when there is none (an empty prefix or one of only 0xff bytes): then the scan has
    no upper bound."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class SqliteStorage:
    """All tables in one sqlite file, one row per key.

    Every write is its own committed transaction, so a gcs killed right after a ``put``
    finds the row on restart. WAL with ``synchronous=NORMAL`` survives the process dying at
    any point; a power cut may lose the last writes but never corrupts the file (redis
    with appendfsync everysec makes the same trade), and no write waits for an fsync.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        # The gcs calls in from its event loop, but a lock makes the connection safe to
        # share with executor threads too (rowcount is per connection, not per call).
        self._lock = threading.Lock()
        if self._path.is_dir():
            # sqlite would only say "unable to open database file".
            raise ValueError(f"cannot open sqlite storage {str(self._path)!r}: it is a directory")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, each statement commits on its own.
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise ValueError(f"cannot open sqlite storage {str(self._path)!r}: {e}") from e
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # WITHOUT ROWID: the primary key is the table's order, so prefix scans are
            # range reads of the index itself.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS rows ("
                " tbl TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
                " PRIMARY KEY (tbl, key)) WITHOUT ROWID"
            )
        except sqlite3.Error as e:
            # "file is not a database", a read-only file, a full disk.
            self._db.close()
            raise ValueError(f"cannot open sqlite storage {str(self._path)!r}: {e}") from e

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, held alone; disk and locking failures become OSError here, the
        one place sqlite's errors are translated."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.OperationalError as e:
                raise OSError(f"sqlite storage {str(self._path)!r}: {e}") from e

    def get(self, table: str, key: bytes) -> bytes | None:
        with self._locked() as db:
            row = db.execute("SELECT value FROM rows WHERE tbl = ? AND key = ?", (table, key)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        with self._locked() as db:
            cursor = db.execute(f"{verb} INTO rows (tbl, key, value) VALUES (?, ?, ?)", (table, key, value))
            # An ignored insert changes no row: that is the atomic "the key was there".
            return overwrite or cursor.rowcount == 1

    def delete(self, table: str, key: bytes) -> bool:
        with self._locked() as db:
            return db.execute("DELETE FROM rows WHERE tbl = ? AND key = ?", (table, key)).rowcount > 0

    def keys(self, table: str, prefix: bytes = b"") -> list[bytes]:
        # A range, not LIKE: blobs compare bytewise (memcmp), and a prefix may hold any
        # byte, including LIKE's own % and _.
        end = prefix_successor(prefix)
        query = "SELECT key FROM rows WHERE tbl = ? AND key >= ?"
        params: tuple[object, ...] = (table, prefix)
        if end is not None:
            query += " AND key < ?"
            params += (end,)
        with self._locked() as db:
            return [bytes(row[0]) for row in db.execute(query + " ORDER BY key", params)]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisStorage:
    """Each table is one redis hash, ``manta:{namespace}:{table}``, so clusters with
    different namespaces can share one redis server.

    Commands are not retried: a dead or hung redis makes a call raise ConnectionError or
    TimeoutError after at most ``timeout`` seconds, and the caller decides what to do.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        username: str | None = None,
        namespace: str = "default",
        timeout: float = 5.0,
    ) -> None:
        # Imported here so a gcs on memory:// or sqlite:// does not pay redis's import time.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if not namespace or ":" in namespace:
            # A ':' would let namespace "a" table "b:c" collide with namespace "a:b" table "c".
            raise ValueError(f"redis namespace {namespace!r} must be non-empty and contain no ':'")
        self._address = f"{host}:{port}"
        self._prefix = f"manta:{namespace}:"
        self._timeout: type[Exception] = redis.exceptions.TimeoutError
        self._failures: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, self._timeout)
        self._client: redis.Redis = redis.Redis(
            host=host,
            port=port,
            db=db,
            password=password,
            username=username,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            self._client.ping()
        except (*self._failures, redis.exceptions.ResponseError) as e:
            # Wrong password, bad db index and refused connections all end up here.
            self._client.close()
            raise ConnectionError(f"cannot reach redis at {self._address}: {e}") from e

    @classmethod
    def from_url(cls, url: str, timeout: float = 5.0) -> RedisStorage:
        """``redis://[[user]:password@]host[:port][/db][?namespace=name]``."""
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port or 6379
            db = int(parts.path.lstrip("/") or 0)
        except ValueError as e:
            raise ValueError(f"bad redis url {url!r} ({e}): use {ACCEPTED_URLS}") from e
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"namespace"}
        if parts.scheme != "redis" or not parts.hostname or unknown or parts.fragment:
            why = f"unknown options {sorted(unknown)}" if unknown else "not a redis url"
            raise ValueError(f"bad redis url {url!r} ({why}): use {ACCEPTED_URLS}")
        return cls(
            host=parts.hostname,
            port=port,
            db=db,
            password=urllib.parse.unquote(parts.password) if parts.password is not None else None,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            namespace=query.get("namespace", ["default"])[-1],
            timeout=timeout,
        )

    def _command(self, *args: str | bytes) -> Any:
        """Run one redis command; the one place redis's errors become the stdlib's."""
        try:
            return self._client.execute_command(*args)
        except self._failures as e:
            failure = TimeoutError if isinstance(e, self._timeout) else ConnectionError
            raise failure(f"redis at {self._address}: {e}") from e

    def _hash(self, table: str) -> bytes:
        return (self._prefix + table).encode()

    def get(self, table: str, key: bytes) -> bytes | None:
        value: bytes | None = self._command("HGET", self._hash(table), key)
        return value

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        if overwrite:
            self._command("HSET", self._hash(table), key, value)
            return True
        return bool(self._command("HSETNX", self._hash(table), key, value))

    def delete(self, table: str, key: bytes) -> bool:
        return bool(self._command("HDEL", self._hash(table), key))

    def keys(self, table: str, prefix: bytes = b"") -> list[bytes]:
        # HKEYS, filtered here: one consistent snapshot with no duplicates (HSCAN may repeat
        # keys) and no glob escaping; it costs a pass over the table, as a full load does.
        keys: list[bytes] = self._command("HKEYS", self._hash(table))
        return [k for k in keys if k.startswith(prefix)]

    def close(self) -> None:
        self._client.close()


def open_storage(url: str) -> Storage:
    """The storage a gcs ``--storage`` URL names: ``memory://`` (the default; also ``""``
    and ``memory``), ``sqlite:///absolute/path.db`` (created, with its directory, if
    missing) or ``redis://[[user]:password@]host[:port][/db][?namespace=name]`` (namespace
    defaults to ``default``). ValueError for anything else, naming the accepted forms."""
    if url in ("", "memory", "memory://"):
        return MemoryStorage()
    if url.startswith("sqlite:"):
        # Taken literally (no %-decoding): the path is whatever follows "sqlite://".
        path = url.removeprefix("sqlite://")
        if not url.startswith("sqlite:///") or path == "/":
            raise ValueError(f"bad sqlite url {url!r}: use sqlite:///absolute/path.db (three slashes)")
        return SqliteStorage(path)
    if url.startswith("redis://"):
        return RedisStorage.from_url(url)
    raise ValueError(f"unsupported gcs storage {url!r}: use {ACCEPTED_URLS}")
