"""Making datasets: ranges, in-memory data, and any ``Datasource`` (the file readers are in
``read_files.py``)."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

import manta
from manta.data._internal import batches, execution, logical, tensors, transforms
from manta.data.block import BlockMetadata
from manta.data.context import DataContext
from manta.data.dataset import Dataset, MaterializedDataset
from manta.data.datasource import Datasource, ReadTask


class RangeDatasource(Datasource):
    """Integers ``0 .. n-1`` in an ``id`` column, or as tensors of ``shape`` in ``data``."""

    def __init__(self, n: int, tensor_shape: tuple[int, ...] | None = None) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        self._n = n
        self._shape = tensor_shape

    def get_name(self) -> str:
        return "Range" if self._shape is None else "RangeTensor"

    def _row_bytes(self) -> int:
        return 8 * int(np.prod(self._shape)) if self._shape is not None else 8

    def estimate_inmemory_data_size(self) -> int | None:
        return self._n * self._row_bytes()

    def _schema(self) -> pa.Schema:
        if self._shape is None:
            return pa.schema([("id", pa.int64())])
        return pa.schema([("data", pa.fixed_shape_tensor(pa.int64(), list(self._shape)))])

    def get_read_tasks(self, parallelism: int) -> list[ReadTask]:
        parts = builtins.max(1, builtins.min(parallelism, self._n))
        bounds = [self._n * i // parts for i in builtins.range(parts + 1)]
        tasks = []
        schema = self._schema()  # one for every task
        for low, high in itertools.pairwise(bounds):
            if high <= low and self._n:
                continue
            meta = BlockMetadata(high - low, (high - low) * self._row_bytes(), None)
            tasks.append(ReadTask(_range_reader(low, high, self._shape), meta, schema))
        return tasks


def _range_reader(low: int, high: int, shape: tuple[int, ...] | None) -> Any:
    def read() -> Iterator[pa.Table]:
        ids = np.arange(low, high, dtype=np.int64)
        if shape is None:
            yield pa.table({"id": ids})
        else:
            values = np.broadcast_to(ids.reshape((-1,) + (1,) * len(shape)), (len(ids), *shape))
            yield pa.table({"data": tensors.ndarray_to_arrow(np.ascontiguousarray(values))})

    return read


def read_datasource(
    datasource: Datasource,
    *,
    parallelism: int = -1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
    **read_args: Any,
) -> Dataset:
    """A dataset read by ``datasource``'s read tasks (run lazily, when the dataset runs)."""
    if not isinstance(datasource, Datasource):
        raise TypeError(f"read_datasource needs a Datasource, got {type(datasource).__name__}")
    if read_args:
        raise TypeError(f"read_datasource got unexpected arguments {sorted(read_args)}")
    args = dict(ray_remote_args or {})
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("memory", memory)):
        if value is not None:
            args[name] = value
    blocks = override_num_blocks if override_num_blocks is not None else parallelism
    if blocks is None or blocks == 0 or blocks < -1:
        raise ValueError(f"override_num_blocks must be a positive integer, got {blocks!r}")
    name = f"Read{datasource.get_name()}"
    return Dataset(logical.Read((), name, datasource, blocks, args, concurrency))


def range(
    n: int, *, parallelism: int = -1, concurrency: int | None = None, override_num_blocks: int | None = None
) -> Dataset:
    """Integers ``0 .. n-1`` in a column ``id``."""
    return read_datasource(
        RangeDatasource(n),
        parallelism=parallelism,
        concurrency=concurrency,
        override_num_blocks=override_num_blocks,
    )


def range_tensor(
    n: int,
    *,
    shape: tuple[int, ...] = (1,),
    parallelism: int = -1,
    concurrency: int | None = None,
    override_num_blocks: int | None = None,
) -> Dataset:
    """Rows ``i`` as arrays of ``shape`` filled with ``i``, in a column ``data``."""
    return read_datasource(
        RangeDatasource(n, tuple(shape)),
        parallelism=parallelism,
        concurrency=concurrency,
        override_num_blocks=override_num_blocks,
    )


def _from_blocks(blocks: Sequence[pa.Table], name: str) -> MaterializedDataset:
    execution.ensure_cluster()
    compacted = [transforms.compact(block) for block in blocks]
    held = tuple((manta.put(block), BlockMetadata(block.num_rows, block.nbytes)) for block in compacted)
    return MaterializedDataset(logical.InputBlocks((), name, held))


def _parts(count: int, wanted: int | None, parallelism: int) -> int:
    if wanted is None and parallelism > 0:
        wanted = parallelism
    if wanted is None:
        wanted = builtins.min(count, DataContext.get_current().read_op_min_num_blocks)
    return builtins.max(1, builtins.min(wanted, count))


def from_items(
    items: list[Any], *, parallelism: int = -1, override_num_blocks: int | None = None
) -> MaterializedDataset:
    """Rows from a list: dicts are rows; anything else becomes the value of an ``item`` column."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"from_items takes a list, got {type(items).__name__}")
    parts = _parts(len(items), override_num_blocks, parallelism)
    bounds = [len(items) * i // parts for i in builtins.range(parts + 1)]
    blocks = [batches.from_items(items[low:high]) for low, high in itertools.pairwise(bounds)]
    return _from_blocks(blocks, "FromItems")


def from_pandas(dfs: Any, override_num_blocks: int | None = None) -> MaterializedDataset:
    """One block per DataFrame (or ``override_num_blocks`` blocks)."""
    frames = dfs if isinstance(dfs, list) else [dfs]
    tables = [batches.from_pandas(frame) for frame in frames]
    return _from_blocks(_resplit(tables, override_num_blocks), "FromPandas")


def from_arrow(tables: Any, *, override_num_blocks: int | None = None) -> MaterializedDataset:
    """One block per ``pyarrow.Table`` (or ``override_num_blocks`` blocks)."""
    items = tables if isinstance(tables, list) else [tables]
    blocks = [pa.ipc.open_stream(t).read_all() if isinstance(t, bytes) else t for t in items]
    for block in blocks:
        if not isinstance(block, pa.Table):
            raise TypeError(f"from_arrow takes pyarrow Tables, got {type(block).__name__}")
    return _from_blocks(_resplit(blocks, override_num_blocks), "FromArrow")


def from_numpy(ndarrays: np.ndarray | list[np.ndarray]) -> MaterializedDataset:
    """One block per array, its rows in a column ``data``."""
    arrays = ndarrays if isinstance(ndarrays, list) else [ndarrays]
    for array in arrays:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"from_numpy takes numpy arrays, got {type(array).__name__}")
    return _from_blocks([pa.table({"data": tensors.ndarray_to_arrow(a)}) for a in arrays], "FromNumpy")


def _resplit(tables: list[pa.Table], parts: int | None) -> list[pa.Table]:
    if parts is None:
        return tables
    if parts < 1:
        raise ValueError(f"override_num_blocks must be at least 1, got {parts}")
    whole = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    bounds = [whole.num_rows * i // parts for i in builtins.range(parts + 1)]
    return [whole.slice(low, high - low) for low, high in itertools.pairwise(bounds)]
