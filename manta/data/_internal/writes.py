"""Writing a dataset through a ``Datasink``: the write runs as one more map step (fused
with the maps before it), each task handing its blocks to ``Datasink.write``; the
driver calls ``on_write_start`` before and ``on_write_complete`` (or
``on_write_failed``) after."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import manta
from manta import cloudpickle
from manta.data._internal import logical, remote_calls
from manta.data._internal.transforms import Blocks, Transform
from manta.data.datasource import Datasink, TaskContext, WriteResult

if TYPE_CHECKING:
    from manta.data.dataset import Dataset


class WriteBlocks(Transform):
    def __init__(self, datasink: Datasink[Any]) -> None:
        self.datasink = datasink
        self.name = f"Write({datasink.get_name()})"

    def __call__(self, blocks: Blocks) -> Blocks:
        counted = {"rows": 0, "bytes": 0}

        def counting() -> Iterator[pa.Table]:
            for block in blocks:
                counted["rows"] += block.num_rows
                counted["bytes"] += block.nbytes
                yield block

        returned = self.datasink.write(
            counting(), TaskContext(task_idx=remote_calls.current_task_index.get())
        )
        yield pa.table(
            {
                "num_rows": [counted["rows"]],
                "size_bytes": [counted["bytes"]],
                "write_return": [cloudpickle.dumps(returned)],
            }
        )


def write(
    dataset: Dataset, datasink: Datasink[Any], remote_args: dict[str, Any], concurrency: int | None
) -> None:
    if not isinstance(datasink, Datasink):
        raise TypeError(f"write_datasink needs a Datasink, got {type(datasink).__name__}")
    step = WriteBlocks(datasink)
    op = logical.MapOp(
        (dataset._plan,), step.name, step, logical.TaskPoolStrategy(concurrency), dict(remote_args)
    )
    written = type(dataset)(op, dataset.context())
    datasink.on_write_start()
    try:
        results = [manta.get(ref) for bundle in written._bundles() for ref in bundle.refs]
    except Exception as error:
        datasink.on_write_failed(error)
        raise
    dataset._last_stats = written._last_stats
    returns = [
        cloudpickle.loads(blob) for table in results for blob in table.column("write_return").to_pylist()
    ]
    datasink.on_write_complete(
        WriteResult(
            num_rows=sum(sum(t.column("num_rows").to_pylist()) for t in results),
            size_bytes=sum(sum(t.column("size_bytes").to_pylist()) for t in results),
            write_returns=returns,
        )
    )
