"""The gcs table storage interface and its backends: memory, sqlite and a real redis.

The behavioural tests run against every backend through the ``storage`` fixture; each
redis test gets a namespace of its own on one module-wide redis-server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import manta
from manta._private.gcs.storage import (
    MemoryStorage,
    RedisStorage,
    SqliteStorage,
    Storage,
    open_storage,
    prefix_successor,
)
from tests.redis_server import free_port, redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    elif request.param == "sqlite":
        backend = SqliteStorage(tmp_path / "gcs.db")
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisStorage.from_url(f"{url}?namespace={uuid.uuid4().hex}")
    yield backend
    backend.close()


def test_get_put_delete(storage: Storage) -> None:
    assert storage.get("t", b"k") is None
    assert storage.put("t", b"k", b"v1")
    assert storage.get("t", b"k") == b"v1"
    assert storage.put("t", b"k", b"v2")  # overwrite by default
    assert storage.get("t", b"k") == b"v2"
    assert storage.delete("t", b"k")
    assert storage.get("t", b"k") is None
    assert not storage.delete("t", b"k")
    assert not storage.delete("never", b"k")


def test_put_without_overwrite_keeps_the_old_value(storage: Storage) -> None:
    assert storage.put("t", b"k", b"first", overwrite=False)
    assert not storage.put("t", b"k", b"second", overwrite=False)
    assert storage.get("t", b"k") == b"first"


def test_empty_value_is_a_value(storage: Storage) -> None:
    storage.put("t", b"k", b"")
    assert storage.get("t", b"k") == b""
    assert not storage.put("t", b"k", b"x", overwrite=False)
    assert storage.delete("t", b"k")


def test_tables_are_separate(storage: Storage) -> None:
    storage.put("a", b"k", b"1")
    storage.put("b", b"k", b"2")
    assert storage.get("a", b"k") == b"1"
    assert storage.get("b", b"k") == b"2"
    storage.delete("a", b"k")
    assert storage.get("b", b"k") == b"2"


def test_keys_by_prefix(storage: Storage) -> None:
    for key in (b"fn:1", b"fn:2", b"job:1"):
        storage.put("kv", key, b"")
    assert sorted(storage.keys("kv")) == [b"fn:1", b"fn:2", b"job:1"]
    assert sorted(storage.keys("kv", b"fn:")) == [b"fn:1", b"fn:2"]
    assert storage.keys("kv", b"none") == []
    assert storage.keys("empty") == []


EDGE_KEYS = [
    b"", b"\x00", b"a", b"a%", b"a%b", b"a_b", b"axb", b"a\\b", b"a*", b"a?", b"a[b]",
    b"a\xff", b"a\xff\x00", b"a\xff\xff", b"b", b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff",
]  # fmt: skip


@pytest.mark.parametrize(
    "prefix", [b"", b"a", b"a%", b"a_", b"a\\", b"a*", b"a\xff", b"a\xff\xff", b"\xff", b"\xff\xff", b"\x00"]
)
def test_keys_with_awkward_prefixes(storage: Storage, prefix: bytes) -> None:
    # % and _ are LIKE's wildcards, * ? [ \ redis glob's; 0xff has no successor byte.
    for key in EDGE_KEYS:
        storage.put("t", key, key)
    assert sorted(storage.keys("t", prefix)) == sorted(k for k in EDGE_KEYS if k.startswith(prefix))


def test_binary_keys_and_values_round_trip(storage: Storage) -> None:
    every_byte = bytes(range(256))
    storage.put("t", every_byte, every_byte[::-1])
    assert storage.get("t", every_byte) == every_byte[::-1]
    assert storage.keys("t", every_byte[:10]) == [every_byte]


@pytest.mark.parametrize(
    ("prefix", "successor"),
    [(b"", None), (b"a", b"b"), (b"a\xff", b"b"), (b"a\xfe\xff\xff", b"a\xff"), (b"\xff\xff", None)],
)
def test_prefix_successor(prefix: bytes, successor: bytes | None) -> None:
    assert prefix_successor(prefix) == successor


@given(keys=st.sets(st.binary(max_size=4)), prefix=st.binary(max_size=3))
def test_sqlite_prefix_scan_matches_startswith(keys: set[bytes], prefix: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "gcs.db")
        for key in keys:
            storage.put("t", key, b"")
        assert storage.keys("t", prefix) == sorted(k for k in keys if k.startswith(prefix))
        storage.close()


# sqlite durability and opening.


def test_sqlite_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "still" / "gcs.db"  # the directories are created
    first = SqliteStorage(path)
    first.put("t", b"k", b"v")
    first.put("u", b"x", b"y")
    first.close()
    again = SqliteStorage(path)
    assert again.get("t", b"k") == b"v"
    assert again.keys("u") == [b"x"]
    assert not again.put("t", b"k", b"other", overwrite=False)
    again.close()


def test_sqlite_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "gcs.db"
    writer = textwrap.dedent(
        """
        import sys, time
        from manta._private.gcs.storage import SqliteStorage

        storage = SqliteStorage(sys.argv[1])
        storage.put("t", b"kept", b"v1")
        storage.put("t", b"kept", b"v2")
        storage.put("t", b"once", b"a", overwrite=False)
        storage.put("t", b"gone", b"x")
        storage.delete("t", b"gone")
        print("written", flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(manta.__file__).parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", writer, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            assert line == "written\n", f"the writer did not write: {proc.stderr.read()[-2000:]}"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # Killed before any checkpoint: the rows are only in the WAL, which reopening replays.
    assert path.with_name("gcs.db-wal").exists()
    storage = SqliteStorage(path)
    assert storage.get("t", b"kept") == b"v2"
    assert storage.get("t", b"once") == b"a"
    assert storage.get("t", b"gone") is None
    storage.close()


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"cannot open sqlite storage '{tmp_path}': it is a directory"):
        SqliteStorage(tmp_path)


def test_sqlite_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with pytest.raises(ValueError, match=r"cannot open sqlite storage .*notes.txt.*not a database"):
        SqliteStorage(path)


def test_sqlite_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cannot open sqlite storage .*file/gcs.db"):
        SqliteStorage(tmp_path / "file" / "gcs.db")


# URLs.


@pytest.mark.parametrize("url", ["", "memory", "memory://"])
def test_open_memory_storage(url: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, MemoryStorage)
    storage.put("t", b"k", b"v")
    assert storage.get("t", b"k") == b"v"


def test_open_sqlite_storage(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite://{tmp_path}/gcs.db")
    assert isinstance(storage, SqliteStorage)
    storage.put("t", b"k", b"v")
    storage.close()
    assert (tmp_path / "gcs.db").exists()


def test_open_redis_storage(redis_url: str) -> None:
    storage = open_storage(redis_url)
    assert isinstance(storage, RedisStorage)
    storage.put("t", b"k", b"v")
    assert storage.get("t", b"k") == b"v"
    storage.delete("t", b"k")
    storage.close()


@pytest.mark.parametrize("url", ["MEMORY", "postgres://db/gcs", "file:///tmp/gcs.db", "/tmp/gcs.db"])
def test_unsupported_storage_is_refused(url: str) -> None:
    with pytest.raises(
        ValueError, match=f"unsupported gcs storage {url!r}: use memory://, sqlite:///.*redis://"
    ):
        open_storage(url)


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite:relative.db", "sqlite:///", "sqlite://"])
def test_bad_sqlite_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=f"bad sqlite url {url!r}: use sqlite:///absolute/path.db"):
        open_storage(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://",
        "redis://host:port",
        "redis://host:99999",
        "redis://host/db",
        "redis://host?db=1",
        "redis://host#x",
        "redis://host?namespace=",
        "redis://host?namespace=a:b",
    ],
)
def test_bad_redis_url_is_refused(url: str) -> None:
    # Refused before any connection is tried: none of these hosts exists.
    with pytest.raises(ValueError, match="redis"):
        open_storage(url)


# redis: connections, namespaces, databases.


@pytest.mark.timeout(10)  # a hang fails the test; no timing is asserted
def test_unreachable_redis_fails_fast_and_says_where() -> None:
    port = free_port()
    with pytest.raises(ConnectionError, match=f"cannot reach redis at 127.0.0.1:{port}: .*refused"):
        open_storage(f"redis://127.0.0.1:{port}")


@pytest.mark.timeout(10)  # a hang fails the test; no timing is asserted
def test_silent_redis_times_out_instead_of_hanging() -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(ConnectionError, match=f"cannot reach redis at 127.0.0.1:{port}: .*[Tt]imeout"):
            RedisStorage(port=port, timeout=0.3)


@pytest.mark.timeout(10)  # a hang fails the test; no timing is asserted
def test_redis_that_dies_makes_calls_fail() -> None:
    with redis_server() as url:
        storage = open_storage(url)
        storage.put("t", b"k", b"v")
    with pytest.raises(ConnectionError, match=r"redis at 127.0.0.1:"):
        storage.get("t", b"k")
    storage.close()


def test_redis_namespaces_do_not_see_each_other(redis_url: str) -> None:
    import redis

    first = open_storage(f"{redis_url}?namespace=first")
    second = open_storage(f"{redis_url}?namespace=second")
    first.put("t", b"k", b"1")
    assert second.get("t", b"k") is None
    assert second.keys("t") == []
    assert second.put("t", b"k", b"2", overwrite=False)
    assert first.get("t", b"k") == b"1"
    assert second.delete("t", b"k")
    assert first.get("t", b"k") == b"1"
    raw = redis.Redis.from_url(redis_url)
    assert raw.hgetall("manta:first:t") == {b"k": b"1"}
    raw.close()
    first.delete("t", b"k")
    for storage in (first, second):
        storage.close()


def test_redis_password_and_database() -> None:
    import redis

    with redis_server() as url:
        port = url.rsplit(":", 1)[1]
        raw = redis.Redis.from_url(url)
        raw.config_set("requirepass", "s3cret")
        raw.close()
        with pytest.raises(ConnectionError, match=f"cannot reach redis at 127.0.0.1:{port}"):
            open_storage(f"redis://:wrong@127.0.0.1:{port}")
        with pytest.raises(ConnectionError, match=f"cannot reach redis at 127.0.0.1:{port}"):
            open_storage(f"redis://127.0.0.1:{port}")
        with pytest.raises(ConnectionError, match=f"cannot reach redis at 127.0.0.1:{port}"):
            open_storage(f"redis://:s3cret@127.0.0.1:{port}/999")
        storage = open_storage(f"redis://:s3cret@127.0.0.1:{port}/3")
        storage.put("t", b"k", b"v")
        storage.close()
        raw = redis.Redis(port=int(port), password="s3cret", db=3)
        assert raw.hget("manta:default:t", b"k") == b"v"
        raw.close()
