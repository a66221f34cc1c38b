"""Partitions encoded in file paths: ``year=2024/month=01/`` (hive) or ``2024/01/`` (dir).

A ``Partitioning`` says how to read them; a ``PathPartitionParser`` reads one path's
values; a ``PathPartitionFilter`` skips files by those values before anything is read.
Values are strings unless ``field_types`` says otherwise, as in Ray.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from manta.data.datasource.paths import resolve_paths_and_filesystem

PartitionDataType = type
_ARROW_TYPES: dict[type, pa.DataType] = {
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    str: pa.string(),
}


class PartitionStyle(str, Enum):
    """How partition values appear in paths: ``key=value`` directories (``"hive"``) or
    bare values whose names come from ``field_names`` (``"dir"``)."""

    HIVE = "hive"
    DIRECTORY = "dir"


@dataclass
class Partitioning:
    """A partition scheme.

    Args:
        style: ``"hive"`` or ``"dir"``.
        base_dir: Partitions are read from the part of a path below this directory;
            files outside it are unpartitioned. ``None``/``""``: the whole path.
        field_names: The partition keys in path order; required for ``"dir"``.
        field_types: The Python type (``int``, ``float``, ``bool``, ``str``) of each key;
            the default is ``str``.
        filesystem: The filesystem ``base_dir`` lives on.
    """

    style: PartitionStyle | str
    base_dir: str | None = None
    field_names: list[str] | None = None
    field_types: dict[str, PartitionDataType] | None = field(default=None)
    filesystem: Any = None

    def __post_init__(self) -> None:
        self.style = PartitionStyle(self.style)
        self.base_dir = self.base_dir or ""
        self.field_types = dict(self.field_types or {})
        for name, kind in self.field_types.items():
            if kind not in _ARROW_TYPES:
                raise ValueError(f"field_types[{name!r}] must be int, float, bool or str, got {kind!r}")
        if self.style == PartitionStyle.DIRECTORY and not self.field_names:
            raise ValueError("Directory partitioning needs field_names: the key of each directory level.")

    @property
    def normalized_base_dir(self) -> str:
        """``base_dir`` resolved as read paths are, ending in ``/`` (or ``""``)."""
        if not self.base_dir:
            return ""
        resolved = resolve_paths_and_filesystem(self.base_dir, self.filesystem)[0][0]
        return resolved.rstrip("/") + "/"

    def arrow_type(self, key: str) -> pa.DataType:
        """The Arrow type of partition key ``key``'s column."""
        return _ARROW_TYPES[(self.field_types or {}).get(key, str)]


class PathPartitionParser:
    """Reads the partition values of file paths under a ``Partitioning``."""

    def __init__(self, partitioning: Partitioning) -> None:
        self._scheme = partitioning
        self._base_dir = partitioning.normalized_base_dir

    @staticmethod
    def of(
        style: PartitionStyle | str = PartitionStyle.HIVE,
        base_dir: str | None = None,
        field_names: list[str] | None = None,
        field_types: dict[str, PartitionDataType] | None = None,
        filesystem: Any = None,
    ) -> PathPartitionParser:
        return PathPartitionParser(Partitioning(style, base_dir, field_names, field_types, filesystem))

    @property
    def scheme(self) -> Partitioning:
        return self._scheme

    def __call__(self, path: str) -> dict[str, Any]:
        """The partition values in ``path`` (``{}`` for a file outside ``base_dir`` or
        with no partition directories), typed by ``field_types``.

        Raises:
            ValueError: the directories do not match ``field_names``.
        """
        if not path.startswith(self._base_dir):
            return {}
        directory = posixpath.dirname(path[len(self._base_dir) :])
        if self._scheme.style == PartitionStyle.HIVE:
            values = self._parse_hive(directory)
        else:
            values = self._parse_dirs(directory)
        for key, kind in (self._scheme.field_types or {}).items():
            if key in values:
                values[key] = _cast(values[key], kind)
        return values

    def _parse_hive(self, directory: str) -> dict[str, Any]:
        parts = [d for d in directory.split("/") if d.count("=") == 1]
        # Writers URL-encode partition values; decode so they read back as written.
        pairs = [(k, urllib.parse.unquote(v)) for k, v in (d.split("=") for d in parts)]
        names = self._scheme.field_names
        if names and pairs and [k for k, _ in pairs] != list(names):
            raise ValueError(
                f"Expected partition keys {names} but found {[k for k, _ in pairs]} in {directory!r}"
            )
        return dict(pairs)

    def _parse_dirs(self, directory: str) -> dict[str, Any]:
        parts = [d for d in directory.split("/") if d]
        names = self._scheme.field_names or []
        if parts and len(parts) != len(names):
            raise ValueError(f"Expected {len(names)} partition value(s) but found {len(parts)}: {parts}.")
        return dict(zip(names, parts, strict=False))


def _cast(value: str, kind: PartitionDataType) -> Any:
    if kind is bool:
        return value.lower() == "true"
    return kind(value)


class PathPartitionFilter:
    """Keeps the files whose partition values pass ``filter_fn``, before reading.

    ``filter_fn`` receives the dict of a file's partition values (``{}`` for an
    unpartitioned file) and returns whether to read it.
    """

    def __init__(
        self, path_partition_parser: PathPartitionParser, filter_fn: Callable[[dict[str, Any]], bool]
    ):
        self._parser = path_partition_parser
        self._filter_fn = filter_fn

    @staticmethod
    def of(
        filter_fn: Callable[[dict[str, Any]], bool],
        style: PartitionStyle | str = PartitionStyle.HIVE,
        base_dir: str | None = None,
        field_names: list[str] | None = None,
        field_types: dict[str, PartitionDataType] | None = None,
        filesystem: Any = None,
    ) -> PathPartitionFilter:
        parser = PathPartitionParser.of(style, base_dir, field_names, field_types, filesystem)
        return PathPartitionFilter(parser, filter_fn)

    @property
    def parser(self) -> PathPartitionParser:
        return self._parser

    def apply(self, path: str) -> bool:
        return bool(self._filter_fn(self._parser(path)))

    def __call__(self, paths: list[str]) -> list[str]:
        return [path for path in paths if self.apply(path)]


def add_partition_columns(
    table: pa.Table, partitions: dict[str, Any], partitioning: Partitioning
) -> pa.Table:
    """``table`` with a constant column per partition key. As Ray does, a key that is
    already a data column must agree with the data and takes the data's type.

    Raises:
        ValueError: a data column disagrees with its partition value.
    """
    for key, value in partitions.items():
        if key not in table.column_names:
            column = pa.array([value] * table.num_rows, type=partitioning.arrow_type(key))
            table = table.append_column(key, column)
            continue
        data = table.column(key)
        try:
            column = pa.array([value] * table.num_rows).cast(data.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ValueError(f"Partition value {value!r} of {key!r} cannot be cast to {data.type}") from e
        if table.num_rows and not pc.all(pc.equal(column, data)).as_py():
            raise ValueError(
                f"Partition column {key} exists in the data, but partition value {value!r} "
                f"differs from the data's values {data.unique().to_pylist()}"
            )
        table = table.set_column(table.column_names.index(key), key, column)
    return table
