"""``DataIterator``: a dataset's rows and batches, as the consumer takes them.

Blocks are fetched ahead of the batch being used (``prefetch_batches``), cut into batches
of the size asked for, optionally drawn from a local shuffle buffer, and turned into the
batch format asked for. A block is released as soon as its rows are out, so a dataset far
larger than memory streams through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

import manta
from manta.data._internal import batcher, batches
from manta.data._internal.bundles import RefBundle


class DataIterator:
    """An iterator over a dataset (or one shard of a ``streaming_split``)."""

    def __init__(
        self, bundles: Callable[[], Iterable[RefBundle]], schema: Callable[[], Any], label: str
    ) -> None:
        self._bundles = bundles
        self._schema = schema
        self._label = label

    def __repr__(self) -> str:
        return f"DataIterator({self._label})"

    def schema(self) -> Any:
        return self._schema()

    def _blocks(self, prefetch_blocks: int) -> Iterator[pa.Table]:
        pending: list[Any] = []
        for bundle in self._bundles():
            pending.extend(bundle.refs)
            if prefetch_blocks > 0 and len(pending) > 1:
                manta.wait(pending[1 : 1 + prefetch_blocks], num_returns=1, timeout=0, fetch_local=True)
            while len(pending) > prefetch_blocks:
                yield manta.get(pending.pop(0))
        while pending:
            yield manta.get(pending.pop(0))

    def iter_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        batch_format: str | None = "default",
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
        _collate_fn: Callable[[Any], Any] | None = None,
    ) -> Iterator[Any]:
        """Batches of ``batch_size`` rows (the last may be smaller unless ``drop_last``) in
        ``batch_format``: ``"default"``/``"numpy"`` (dict of ndarrays), ``"pandas"`` or
        ``"pyarrow"``. With ``local_shuffle_buffer_size``, each batch is drawn at random
        from a buffer of at least that many rows."""
        batches.check_batch_format(batch_format)
        rng = np.random.default_rng(local_shuffle_seed) if local_shuffle_buffer_size else None
        tables = batcher.batch_tables(
            self._blocks(max(prefetch_batches, 0)), batch_size, drop_last, local_shuffle_buffer_size, rng
        )
        for table in tables:
            batch = batches.to_batch(table, batch_format)
            yield batch if _collate_fn is None else _collate_fn(batch)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts of column name to value."""
        for block in self._blocks(1):
            yield from batches.rows(block)

    def iter_torch_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        dtypes: Any = None,
        device: str = "auto",
        collate_fn: Callable[[Any], Any] | None = None,
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ) -> Iterator[Any]:
        """Batches as dicts of ``torch.Tensor`` (or what ``collate_fn`` makes of the numpy
        batch) on ``device`` (``"auto"``: the CPU); needs ``torch``."""
        if collate_fn is not None and dtypes is not None:
            raise ValueError("iter_torch_batches takes dtypes or collate_fn, not both")
        try:
            import torch
        except ImportError as error:
            raise ImportError("iter_torch_batches needs PyTorch: pip install torch") from error
        target = "cpu" if device == "auto" else device  # "auto" is Train's device; outside Train, the CPU

        def to_tensors(batch: dict[str, np.ndarray]) -> Any:
            if collate_fn is not None:
                return collate_fn(batch)
            out = {}
            for name, values in batch.items():
                dtype = dtypes.get(name) if isinstance(dtypes, dict) else dtypes
                out[name] = torch.as_tensor(values, dtype=dtype, device=target)
            return out

        yield from self.iter_batches(
            prefetch_batches=prefetch_batches,
            batch_size=batch_size,
            batch_format="numpy",
            drop_last=drop_last,
            local_shuffle_buffer_size=local_shuffle_buffer_size,
            local_shuffle_seed=local_shuffle_seed,
            _collate_fn=to_tensors,
        )
