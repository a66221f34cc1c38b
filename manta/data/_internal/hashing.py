"""Hash partitioning of blocks by key columns, with a hash stable across processes and runs.

Python's ``hash()`` of ``str`` and ``bytes`` is salted per process, so two map tasks would
send one key to different reducers. Here numbers are mixed with splitmix64 and strings,
bytes and other values go through blake2b; a null hashes to a constant, so all null keys
meet in one part. A float with an integral value hashes as that integer, so a key column
typed ``int64`` in one block and ``double`` in another still agrees.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manta.data._internal.shuffling import split_by_index

_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_COMBINE = np.uint64(0x100000001B3)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    # Arrays of uint64 wrap silently on overflow, which is what the mixer wants.
    x = values + _NULL_HASH
    x = (x ^ (x >> np.uint64(30))) * _MIX_1
    x = (x ^ (x >> np.uint64(27))) * _MIX_2
    return x ^ (x >> np.uint64(31))


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _integers(array: pa.Array) -> np.ndarray:
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.int8())
    return np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.int64).view(np.uint64)


def _floats(array: pa.Array) -> np.ndarray:
    values = np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2.0**63)
    as_ints = np.where(integral, values, 0).astype(np.int64).view(np.uint64)
    canonical = np.where(np.isnan(values), np.nan, values)
    return np.where(integral, as_ints, canonical.view(np.uint64))


def _by_dictionary(array: pa.Array) -> np.ndarray:
    """Hash each distinct value once in Python, then spread the hashes by index."""
    encoded = pc.dictionary_encode(array)
    dictionary = encoded.dictionary.to_pylist()
    hashes = np.array([_digest(_value_bytes(value)) for value in dictionary] or [0], dtype=np.uint64)
    return hashes[np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False))]


def _value_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return repr(value).encode("utf-8")


_BYTE_LIKE = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _is_time(kind: pa.DataType) -> bool:
    return any(
        check(kind)
        for check in (pa.types.is_timestamp, pa.types.is_date, pa.types.is_time, pa.types.is_duration)
    )


def _column_hash(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    kind = array.type
    if pa.types.is_null(kind):
        return np.full(len(array), _NULL_HASH, dtype=np.uint64)
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        raw = _integers(array)
    elif pa.types.is_floating(kind):
        raw = _floats(array.cast(pa.float64()))
    elif _is_time(kind):
        raw = _integers(array.view(pa.int64()) if kind.bit_width == 64 else array.view(pa.int32()))
    elif any(check(kind) for check in _BYTE_LIKE):
        raw = _by_dictionary(array)
    else:
        raw = np.array([_digest(_value_bytes(v)) for v in array.to_pylist()], dtype=np.uint64)
    hashed = _splitmix64(raw)
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return np.where(nulls, _NULL_HASH, hashed)


def hash_columns(table: pa.Table, columns: list[str]) -> np.ndarray:
    """A stable unsigned 64-bit hash per row of ``table`` over ``columns``.

    Raises:
        KeyError: if a column is missing.
    """
    combined = np.zeros(table.num_rows, dtype=np.uint64)
    for name in columns:
        combined = _splitmix64(combined * _COMBINE ^ _column_hash(table.column(name)))
    return combined


def hash_partition(table: pa.Table, columns: list[str], n: int) -> list[pa.Table]:
    """Split ``table`` into ``n`` parts so that rows with equal ``columns`` values land in
    the same part, in every process and run. Row order within a part is kept.

    Raises:
        ValueError: if ``n < 1`` or ``columns`` is empty.
        KeyError: if a column is missing.
    """
    if n < 1:
        raise ValueError(f"The number of partitions must be at least 1, got {n}.")
    if not columns:
        raise ValueError("Hash partitioning needs at least one key column.")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise KeyError(f"Key columns {missing} are not in the block's columns {table.column_names}.")
    parts = (hash_columns(table, columns) % np.uint64(n)).astype(np.int64)
    return split_by_index(table, parts, n)
