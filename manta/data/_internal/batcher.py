"""Cutting a stream of blocks into the batches a consumer asked for: exact sizes, an
optional local shuffle buffer, and ``drop_last``. Pure: blocks in, tables out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from manta.data._internal import transforms


def batch_tables(
    blocks: Iterable[pa.Table],
    batch_size: int | None,
    drop_last: bool = False,
    shuffle_buffer_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> Iterator[pa.Table]:
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}")
    if shuffle_buffer_size is not None:
        if batch_size is None:
            raise ValueError("local_shuffle_buffer_size needs a batch_size")
        if shuffle_buffer_size < 1:
            raise ValueError(f"local_shuffle_buffer_size must be positive, got {shuffle_buffer_size}")
        stream = _shuffled(blocks, batch_size, shuffle_buffer_size, rng or np.random.default_rng())
    else:
        stream = transforms.rebatch(blocks, batch_size)
    for table in stream:
        if drop_last and batch_size is not None and table.num_rows < batch_size:
            return
        yield table


def _shuffled(
    blocks: Iterable[pa.Table], batch_size: int, buffer_size: int, rng: np.random.Generator
) -> Iterator[pa.Table]:
    """Batches drawn at random from a buffer kept at ``buffer_size`` rows or more."""
    buffer: pa.Table | None = None
    for block in blocks:
        buffer = block if buffer is None else transforms.concat([buffer, block])
        while buffer.num_rows >= buffer_size + batch_size:
            batch, buffer = _draw(buffer, batch_size, rng)
            yield batch
    while buffer is not None and buffer.num_rows:
        batch, buffer = _draw(buffer, min(batch_size, buffer.num_rows), rng)
        yield batch


def _draw(buffer: pa.Table, rows: int, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    picked = np.zeros(buffer.num_rows, dtype=bool)
    picked[rng.choice(buffer.num_rows, size=rows, replace=False)] = True
    order = rng.permutation(rows)
    batch = buffer.filter(pa.array(picked)).take(pa.array(order))
    return batch, buffer.filter(pa.array(~picked))
