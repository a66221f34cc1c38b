"""The public file readers: ``read_parquet``, ``read_csv``, ``read_json``, ``read_text``,
``read_binary_files``, ``read_numpy`` and ``read_images``, with Ray 2.60's signatures.

Each lists its files on the driver, builds a datasource and hands it to
``read_datasource`` with the scheduling arguments unchanged. Ray's named remote
arguments (``label_selector``, ``resources``…) are folded into ``ray_remote_args``, as
Ray does. Arguments Manta cannot honour raise ``NotImplementedError`` when set to
anything but their default: ``catalog``, ``shuffle``, ``include_row_hash``,
``skip_paths``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from manta.data.datasource.csv import CSVDatasource
from manta.data.datasource.datasource import Datasource
from manta.data.datasource.images import IMAGE_EXTENSIONS, ImageDatasource
from manta.data.datasource.json import JSONDatasource
from manta.data.datasource.numpy_files import NumpyDatasource
from manta.data.datasource.parquet import ParquetDatasource, TensorColumnSchema
from manta.data.datasource.partitioning import Partitioning, PathPartitionFilter
from manta.data.datasource.text import BinaryDatasource, TextDatasource

if TYPE_CHECKING:
    from manta.data.dataset import Dataset

PARQUET_EXTENSIONS = ["parquet"]
JSON_EXTENSIONS = [
    f"{kind}{suffix}" for suffix in ("", ".gz", ".br", ".zst", ".lz4") for kind in ("json", "jsonl")
]
NUMPY_EXTENSIONS = ["npy"]
_HIVE = Partitioning("hive")


def _refuse(**settings: Any) -> None:
    """Raise for Ray arguments Manta cannot honour that are set to a non-default value;
    ignoring them would silently change what is read."""
    for name, value in settings.items():
        if value not in (None, False):
            raise NotImplementedError(f"{name}={value!r} is not supported by Manta's readers")


# The reader parameters that say where and how its tasks run, passed on as given.
_SCHEDULING = (
    "parallelism", "num_cpus", "num_gpus", "memory", "concurrency", "override_num_blocks",
    "ray_remote_args", "label_selector", "fallback_strategy", "max_calls", "resources",
    "accelerator_type", "runtime_env",
)  # fmt: skip


def _scheduling(arguments: dict[str, Any]) -> dict[str, Any]:
    """A reader's scheduling arguments, picked from its ``locals()``."""
    return {name: arguments[name] for name in _SCHEDULING if name in arguments}


def _read(datasource: Datasource, scheduling: dict[str, Any]) -> Dataset:
    """Hand ``datasource`` to ``read_datasource``, Ray's named remote arguments merged
    into ``ray_remote_args`` (named ones win, as in Ray)."""
    from manta.data.read_api import read_datasource

    core = ("parallelism", "num_cpus", "num_gpus", "memory", "concurrency", "override_num_blocks")
    named = {k: v for k, v in scheduling.items() if k not in (*core, "ray_remote_args") and v is not None}
    given = scheduling.get("ray_remote_args")
    remote = {**(given or {}), **named} if named else given
    return read_datasource(
        datasource, ray_remote_args=remote, **{k: scheduling[k] for k in core if k in scheduling}
    )


def read_parquet(
    paths: str | list[str],
    *,
    filesystem: Any = None,
    catalog: Any = None,
    columns: list[str] | None = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    tensor_column_schema: TensorColumnSchema | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = _HIVE,
    shuffle: Literal["files"] | None = None,
    include_paths: bool = False,
    include_row_hash: bool = False,
    file_extensions: list[str] | None = PARQUET_EXTENSIONS,
    ignore_missing_paths: bool = False,
    skip_paths: str | list[str] | None = None,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    **arrow_parquet_args: Any,
) -> Dataset:
    """Read Parquet files (or directories of them) into a dataset.

    Files with different schemas are read with their union (missing columns as nulls);
    hive partition directories (``key=value``) become string columns unless
    ``partitioning`` says otherwise or is ``None``. ``filter=`` (a
    ``pyarrow.dataset.Expression``) in ``arrow_parquet_args`` is pushed into the scan
    (Ray 2.60 deprecates it); ``schema=`` reads every file as that schema.

    Differs from Ray: globs are expanded; ``catalog``, ``shuffle``, ``include_row_hash``
    and ``skip_paths`` raise ``NotImplementedError``.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files; bad ``paths``; a file is not Parquet (named, on reading).
        TypeError: two files' schemas conflict (both named).
    """
    _refuse(catalog=catalog, shuffle=shuffle, include_row_hash=include_row_hash, skip_paths=skip_paths)
    datasource = ParquetDatasource(
        paths,
        columns=columns,
        tensor_column_schema=tensor_column_schema,
        arrow_parquet_args=arrow_parquet_args,
        filesystem=filesystem,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        file_extensions=file_extensions,
        ignore_missing_paths=ignore_missing_paths,
    )
    return _read(datasource, _scheduling(locals()))


def read_csv(
    paths: str | list[str],
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    arrow_open_stream_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = _HIVE,
    include_paths: bool = False,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = None,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    **arrow_csv_args: Any,
) -> Dataset:
    """Read CSV files into a dataset with ``pyarrow.csv`` (``arrow_csv_args``:
    ``read_options``, ``parse_options``, ``convert_options``). Files ending in ``.gz``
    and other compression extensions are decompressed.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; ``paths`` has the wrong type; a file cannot be
            parsed (when its read task runs, naming the file and the reader).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = CSVDatasource(
        paths,
        arrow_csv_args=arrow_csv_args,
        filesystem=filesystem,
        open_stream_args=arrow_open_stream_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))


def read_json(
    paths: str | list[str],
    *,
    lines: bool = False,
    filesystem: Any = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    arrow_open_stream_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = _HIVE,
    include_paths: bool = False,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = JSON_EXTENSIONS,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    **arrow_json_args: Any,
) -> Dataset:
    """Read JSON files into a dataset with ``pyarrow.json`` (``arrow_json_args``:
    ``read_options``, ``parse_options``): newline-delimited objects or, unless
    ``lines=True``, a file holding one JSON array of objects (as Ray).

    Differs from Ray: ``lines=True`` reads with Arrow rather than pandas, and accepts
    ``filesystem`` and the Arrow arguments.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; ``paths`` has the wrong type; a file cannot be
            parsed (when its read task runs, naming the file and the reader).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = JSONDatasource(
        paths,
        lines=lines,
        arrow_json_args=arrow_json_args,
        filesystem=filesystem,
        open_stream_args=arrow_open_stream_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))


def read_text(
    paths: str | list[str],
    *,
    encoding: str = "utf-8",
    drop_empty_lines: bool = True,
    filesystem: Any = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    arrow_open_stream_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = None,
    include_paths: bool = False,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = None,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> Dataset:
    """Read text files into a dataset with one row per line, in a ``text`` column
    (blank lines dropped unless ``drop_empty_lines=False``).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; ``paths`` has the wrong type; a file cannot be
            parsed (when its read task runs, naming the file and the reader).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = TextDatasource(
        paths,
        drop_empty_lines=drop_empty_lines,
        encoding=encoding,
        filesystem=filesystem,
        open_stream_args=arrow_open_stream_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))


def read_binary_files(
    paths: str | list[str],
    *,
    include_paths: bool = False,
    filesystem: Any = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    arrow_open_stream_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = None,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = None,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> Dataset:
    """Read files into a dataset with one row per file, its contents in a ``bytes``
    column (and its path in ``path`` with ``include_paths=True``).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; ``paths`` has the wrong type; a file cannot be
            parsed (when its read task runs, naming the file and the reader).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = BinaryDatasource(
        paths,
        filesystem=filesystem,
        open_stream_args=arrow_open_stream_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))


def read_numpy(
    paths: str | list[str],
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    arrow_open_stream_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = None,
    include_paths: bool = False,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = NUMPY_EXTENSIONS,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    allow_pickle: bool = False,
    **numpy_load_args: Any,
) -> Dataset:
    """Read ``.npy`` files into a dataset with one row per element of each array's first
    axis, in a ``data`` column (a tensor column for arrays of two or more dimensions).
    ``allow_pickle=True`` reads object arrays (unpickling runs code from the file).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; ``paths`` has the wrong type; a file cannot be
            parsed (when its read task runs, naming the file and the reader).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = NumpyDatasource(
        paths,
        allow_pickle=allow_pickle,
        numpy_load_args=numpy_load_args,
        filesystem=filesystem,
        open_stream_args=arrow_open_stream_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))


def read_images(
    paths: str | list[str],
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    arrow_open_file_args: dict[str, Any] | None = None,
    partition_filter: PathPartitionFilter | None = None,
    partitioning: Partitioning | None = None,
    size: tuple[int, int] | None = None,
    mode: str | None = None,
    include_paths: bool = False,
    ignore_missing_paths: bool = False,
    shuffle: Literal["files"] | None = None,
    file_extensions: list[str] | None = IMAGE_EXTENSIONS,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    label_selector: dict[str, str] | None = None,
    fallback_strategy: list[dict[str, Any]] | None = None,
    max_calls: int | None = None,
    resources: dict[str, float] | None = None,
    accelerator_type: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> Dataset:
    """Read images into a dataset with one row per image, in an ``image`` tensor column
    of shape ``(height, width[, channels])``; ``size=(height, width)`` resizes and
    ``mode`` (a Pillow mode such as ``"RGB"``) converts every image. Needs Pillow.

    Raises:
        ImportError: Pillow is not installed.
        FileNotFoundError: a path does not exist.
        ValueError: no files to read; a file is not an image (when its read task runs).
        NotImplementedError: ``shuffle`` is set.
    """
    _refuse(shuffle=shuffle)
    datasource = ImageDatasource(
        paths,
        size=size,
        mode=mode,
        filesystem=filesystem,
        open_stream_args=arrow_open_file_args,
        partition_filter=partition_filter,
        partitioning=partitioning,
        include_paths=include_paths,
        ignore_missing_paths=ignore_missing_paths,
        file_extensions=file_extensions,
    )
    return _read(datasource, _scheduling(locals()))
