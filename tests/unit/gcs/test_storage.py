"""The gcs table storage interface and its in-memory backend."""

from __future__ import annotations

import pytest

from manta._private.gcs.storage import MemoryStorage, open_storage


def test_get_put_delete() -> None:
    storage = MemoryStorage()
    assert storage.get("t", b"k") is None
    assert storage.put("t", b"k", b"v1")
    assert storage.get("t", b"k") == b"v1"
    assert storage.put("t", b"k", b"v2")  # overwrite by default
    assert storage.get("t", b"k") == b"v2"
    assert storage.delete("t", b"k")
    assert storage.get("t", b"k") is None
    assert not storage.delete("t", b"k")
    assert not storage.delete("never", b"k")


def test_put_without_overwrite_keeps_the_old_value() -> None:
    storage = MemoryStorage()
    assert storage.put("t", b"k", b"first", overwrite=False)
    assert not storage.put("t", b"k", b"second", overwrite=False)
    assert storage.get("t", b"k") == b"first"


def test_empty_value_is_a_value() -> None:
    storage = MemoryStorage()
    storage.put("t", b"k", b"")
    assert storage.get("t", b"k") == b""
    assert not storage.put("t", b"k", b"x", overwrite=False)
    assert storage.delete("t", b"k")


def test_tables_are_separate() -> None:
    storage = MemoryStorage()
    storage.put("a", b"k", b"1")
    storage.put("b", b"k", b"2")
    assert storage.get("a", b"k") == b"1"
    assert storage.get("b", b"k") == b"2"
    storage.delete("a", b"k")
    assert storage.get("b", b"k") == b"2"


def test_keys_by_prefix() -> None:
    storage = MemoryStorage()
    for key in (b"fn:1", b"fn:2", b"job:1"):
        storage.put("kv", key, b"")
    assert sorted(storage.keys("kv")) == [b"fn:1", b"fn:2", b"job:1"]
    assert sorted(storage.keys("kv", b"fn:")) == [b"fn:1", b"fn:2"]
    assert storage.keys("kv", b"none") == []
    assert storage.keys("empty") == []


@pytest.mark.parametrize("url", ["", "memory", "memory://"])
def test_open_memory_storage(url: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, MemoryStorage)
    storage.put("t", b"k", b"v")
    assert storage.get("t", b"k") == b"v"


@pytest.mark.parametrize("url", ["redis://localhost:6379", "sqlite:///tmp/x", "MEMORY"])
def test_unsupported_storage_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=f"unsupported gcs storage {url!r}: use memory://"):
        open_storage(url)
