"""The code that runs in workers: map tasks, the map actors of a pool, and the steps of
all-to-all operators. Each map task is a generator that yields a block, then that block's
metadata, for every block it makes, so the driver learns of blocks as they are made.
"""

from __future__ import annotations

import contextvars
import resource
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

import manta
from manta.data._internal import transforms
from manta.data._internal.stats import ExecStats
from manta.data.block import BlockMetadata

# Chains a worker process loaded, by key: a pool's actors and repeated tasks of a stage
# load the chain (the user's functions) once.
_CHAINS: dict[str, list[transforms.Transform]] = {}
_CHAINS_KEPT = 16

# The index of the map task (its unit's sequence number) running in this thread, for
# transforms that name things after it (writes' file names).
current_task_index: contextvars.ContextVar[int] = contextvars.ContextVar("current_task_index", default=0)


def load_chain(key: str, holder: Sequence[Any]) -> list[transforms.Transform]:
    chain = _CHAINS.get(key)
    if chain is None:
        chain = manta.get(holder[0])
        if len(_CHAINS) >= _CHAINS_KEPT:
            _CHAINS.pop(next(iter(_CHAINS)))
        _CHAINS[key] = chain
    return chain


def _is_read_task(item: Any) -> bool:
    return callable(item) and hasattr(item, "metadata") and not isinstance(item, pa.Table)


def _source(items: Sequence[Any]) -> tuple[Iterable[pa.Table], tuple[str, ...] | None]:
    if items and _is_read_task(items[0]):
        files: list[str] = []
        for task in items:
            files.extend(task.metadata.input_files or ())
        return (block for task in items for block in task()), tuple(files) or None
    return items, None


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_blocks(
    chain: Sequence[transforms.Transform], task_index: int, items: Sequence[Any], target_max_block_size: int
) -> Iterator[Any]:
    """Block, metadata, block, metadata, ... for what ``chain`` makes of ``items``."""
    current_task_index.set(task_index)
    source, files = _source(items)
    wall, cpu = time.perf_counter(), time.process_time()
    for produced in transforms.run_chain(chain, source, target_max_block_size):
        block = transforms.compact(produced)
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        stats = ExecStats(now_wall - wall, now_cpu - cpu, _peak_rss())
        yield block
        yield BlockMetadata(block.num_rows, block.nbytes, files, stats)
        wall, cpu = time.perf_counter(), time.process_time()


def map_task(
    key: str, holder: Sequence[Any], target_max_block_size: int, task_index: int, *items: Any
) -> Iterator[Any]:
    yield from run_blocks(load_chain(key, holder), task_index, items, target_max_block_size)


class MapWorker:
    """An actor of a ``map_batches`` pool: makes the user's callable class once, then
    runs the stage's chain on each bundle it is given."""

    def __init__(self, key: str, holder: Sequence[Any], target_max_block_size: int) -> None:
        self._chain = load_chain(key, holder)
        self._target = target_max_block_size
        for step in self._chain:
            for fn in step.user_fns():
                fn.bind()

    def ready(self) -> bool:
        return True

    def run(self, task_index: int, *items: Any) -> Iterator[Any]:
        yield from run_blocks(self._chain, task_index, items, self._target)


# All-to-all steps: a split of one block into parts, then a merge of parts into a block.


def split_block(algorithm: Any, index: int, block: pa.Table) -> Any:
    """``algorithm.split(index, block)``: a tuple of parts (one return each)."""
    parts = [transforms.compact(part) for part in algorithm.split(index, block)]
    return parts[0] if len(parts) == 1 else tuple(parts)


def merge_parts(algorithm: Any, index: int, *parts: pa.Table) -> tuple[pa.Table, BlockMetadata]:
    wall, cpu = time.perf_counter(), time.process_time()
    block = transforms.compact(algorithm.merge(index, list(parts)))
    stats = ExecStats(time.perf_counter() - wall, time.process_time() - cpu, _peak_rss())
    return block, BlockMetadata(block.num_rows, block.nbytes, None, stats)


def call(fn: Any, *args: Any) -> Any:
    """A plain function of blocks in a task (samples, partial aggregates)."""
    return fn(*args)
