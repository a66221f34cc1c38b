"""The read interface: a ``Datasource`` plans ``ReadTask``s, and each task yields blocks.

The executor calls ``get_read_tasks`` once on the driver and ships every task (pickled
with cloudpickle) to a worker, so a task holds only what it needs to open its data:
paths, a picklable filesystem and options, never an open file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from manta.data.block import BlockMetadata


class ReadTask:
    """One unit of reading: a function returning tables, and what is known about them.

    Args:
        read_fn: Called in a worker; returns (or yields) the ``pyarrow.Table`` blocks.
        metadata: Rows and bytes expected (``num_rows=None`` where unknown) and the
            input files, known before reading; the executor uses it for planning.
        schema: The schema of the blocks, where known before reading.

    Unlike Ray, there is no ``per_task_row_limit``: limits are applied by the executor.
    """

    def __init__(
        self,
        read_fn: Callable[[], Iterable[pa.Table]],
        metadata: BlockMetadata,
        schema: pa.Schema | None = None,
    ) -> None:
        self._read_fn = read_fn
        self._metadata = metadata
        self._schema = schema

    @property
    def metadata(self) -> BlockMetadata:
        return self._metadata

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema

    @property
    def read_fn(self) -> Callable[[], Iterable[pa.Table]]:
        return self._read_fn

    def __call__(self) -> Iterator[pa.Table]:
        yield from self._read_fn()


class Datasource:
    """A source of data that ``read_datasource`` turns into a dataset.

    Subclass it to read from something Manta has no reader for: implement
    ``get_read_tasks`` and ``estimate_inmemory_data_size``, as in Ray::

        class Numbers(Datasource):
            def __init__(self, n: int) -> None:
                self.n = n

            def estimate_inmemory_data_size(self) -> int | None:
                return self.n * 8

            def get_read_tasks(self, parallelism: int) -> list[ReadTask]:
                bounds = [self.n * i // parallelism for i in range(parallelism + 1)]
                return [
                    ReadTask(
                        lambda lo=lo, hi=hi: [pa.table({"id": list(range(lo, hi))})],
                        BlockMetadata(num_rows=hi - lo, size_bytes=(hi - lo) * 8),
                    )
                    for lo, hi in zip(bounds, bounds[1:])
                ]

    Unlike Ray, ``get_read_tasks`` receives only ``parallelism`` (no row limit or data
    context) and the deprecated ``create_reader``/``prepare_read`` API does not exist.
    """

    def get_name(self) -> str:
        """The name shown for the read operator (``"Read" + name``); by default the class
        name without a ``Datasource`` suffix, as in Ray."""
        name = type(self).__name__
        suffix = "Datasource"
        return name[: -len(suffix)] if name.endswith(suffix) and name != suffix else name

    def estimate_inmemory_data_size(self) -> int | None:
        """Bytes the data will take in memory once read, or ``None`` if unknown."""
        raise NotImplementedError

    def get_read_tasks(self, parallelism: int) -> list[ReadTask]:
        """Plan the read as about ``parallelism`` tasks (fewer where the data cannot be
        split that finely). ``parallelism`` is always a positive int."""
        raise NotImplementedError

    def supports_projection_pushdown(self) -> bool:
        """Whether ``apply_projection`` can make a reader of fewer columns (so a
        ``select_columns`` or a groupby's columns are read, not the whole file)."""
        return False

    def apply_projection(self, projection_map: dict[str, str] | None) -> Datasource:
        """A copy of this datasource reading only the columns that are keys of
        ``projection_map`` (values: their names in the output; only unrenamed columns are
        supported here). Called only when ``supports_projection_pushdown()``."""
        raise NotImplementedError

    def supports_predicate_pushdown(self) -> bool:
        """Whether ``apply_predicate`` can make a reader that keeps only matching rows (so
        a ``filter(expr=...)`` right after the read is done while reading)."""
        return False

    def apply_predicate(self, predicate: pc.Expression) -> Datasource:
        """A copy of this datasource that yields only the rows ``predicate`` (an Arrow
        compute expression over its columns) holds for. Called only when
        ``supports_predicate_pushdown()``."""
        raise NotImplementedError

    @property
    def supports_distributed_reads(self) -> bool:
        """``False`` to run every read task on the driver's node (e.g. local-only data)."""
        return True
