"""Cutting a dataset into several: ``split``, ``split_at_indices``,
``split_proportionately``, ``train_test_split`` (all materialize first) and
``streaming_split`` (shards fed as the dataset runs, by a coordinator actor)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import manta
from manta.data._internal import logical, transforms
from manta.data._internal.bundles import RefBundle
from manta.data.block import BlockMetadata

if TYPE_CHECKING:
    from manta.data.dataset import Dataset, MaterializedDataset
    from manta.data.iterator import DataIterator


def _slice(block: Any, start: int, stop: int) -> tuple[Any, BlockMetadata]:
    part = transforms.compact(block.slice(start, stop - start))
    return part, BlockMetadata(part.num_rows, part.nbytes)


def _materialized(
    dataset: Dataset, blocks: list[tuple[Any, BlockMetadata]], name: str
) -> MaterializedDataset:
    from manta.data.dataset import MaterializedDataset

    return MaterializedDataset(logical.InputBlocks((), name, tuple(blocks)), dataset.context())


def _cut(blocks: list[tuple[Any, BlockMetadata]], bounds: list[int]) -> list[list[tuple[Any, BlockMetadata]]]:
    """Blocks cut at global row offsets: piece ``i`` has rows ``[bounds[i], bounds[i+1])``."""
    slicer = manta.remote(_slice).options(num_returns=2, name="Split")
    pieces: list[list[tuple[Any, BlockMetadata]]] = [[] for _ in bounds[:-1]]
    start = 0
    pending = []
    for ref, meta in blocks:
        rows = meta.num_rows or 0
        for i, (low, high) in enumerate(itertools.pairwise(bounds)):
            a, b = max(low, start), min(high, start + rows)
            if a >= b:
                continue
            if a == start and b == start + rows:
                pieces[i].append((ref, meta))
            else:
                part, part_meta = slicer.remote(ref, a - start, b - start)
                pending.append((i, part, part_meta))
                pieces[i].append((part, None))  # type: ignore[arg-type]
        start += rows
    metas = manta.get([meta for _, _, meta in pending])
    filled = {id(part): meta for (_, part, _), meta in zip(pending, metas, strict=True)}
    return [[(ref, meta if meta is not None else filled[id(ref)]) for ref, meta in piece] for piece in pieces]


def split_at_indices(dataset: Dataset, indices: list[int]) -> list[MaterializedDataset]:
    if any(i < 0 for i in indices):
        raise ValueError(f"indices must be non-negative, got {indices}")
    if sorted(indices) != list(indices):
        raise ValueError(f"indices must be sorted in ascending order, got {indices}")
    from manta.data.dataset import MaterializedDataset

    materialized = dataset if isinstance(dataset, MaterializedDataset) else dataset.materialize()
    blocks = list(materialized._blocks())
    total = sum(meta.num_rows or 0 for _, meta in blocks)
    bounds = [0, *(min(i, total) for i in indices), total]
    return [_materialized(dataset, piece, "Split") for piece in _cut(blocks, bounds)]


def split_proportionately(dataset: Dataset, proportions: list[float]) -> list[MaterializedDataset]:
    if not proportions or any(p <= 0 for p in proportions) or sum(proportions) >= 1:
        raise ValueError(
            f"proportions must be positive and sum to less than 1 (the rest is the last split), got {proportions}"
        )
    dataset = dataset.materialize()  # once: the count and the cut see the same rows
    total = dataset.count()
    indices, acc = [], 0.0
    for p in proportions:
        acc += p
        indices.append(int(total * acc))
    return split_at_indices(dataset, indices)


def split(dataset: Dataset, n: int, equal: bool) -> list[MaterializedDataset]:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"The number of splits {n!r} is not a positive integer.")
    materialized = dataset.materialize()
    blocks = list(materialized._blocks())
    total = sum(meta.num_rows or 0 for _, meta in blocks)
    if equal:
        per = total // n
        return [
            _materialized(dataset, piece, "Split") for piece in _cut(blocks, [per * i for i in range(n + 1)])
        ]
    # Whole blocks, spread so that each split's rows are as even as whole blocks allow.
    shares: list[list[tuple[Any, BlockMetadata]]] = [[] for _ in range(n)]
    rows = [0] * n
    for block in blocks:
        lightest = rows.index(min(rows))
        shares[lightest].append(block)
        rows[lightest] += block[1].num_rows or 0
    return [_materialized(dataset, share, "Split") for share in shares]


def train_test_split(
    dataset: Dataset, test_size: float, shuffle: bool, seed: int | None, stratify: str | None
) -> tuple[MaterializedDataset, MaterializedDataset]:
    if stratify is not None:
        if shuffle:
            raise ValueError(
                "Cannot specify both 'shuffle=True' and 'stratify' parameters: a stratified split "
                "keeps each class's rows in their order"
            )
        return _stratified_split(dataset, test_size, stratify)
    source = (dataset.random_shuffle(seed=seed) if shuffle else dataset).materialize()
    if isinstance(test_size, float):
        _check_share(test_size)
        train, test = split_proportionately(source, [1 - test_size])
        return train, test
    if not isinstance(test_size, int) or test_size < 0:
        raise TypeError(f"test_size must be a float in (0, 1) or a non-negative int, got {test_size!r}")
    total = source.count()
    if test_size > total:
        raise ValueError(f"test_size {test_size} is larger than the dataset ({total} rows)")
    train, test = split_at_indices(source, [total - test_size])
    return train, test


def _check_share(test_size: float) -> None:
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1 when a float, got {test_size}")


# The column that marks a stratified split's rows, there only while it is made.
_IS_TRAIN = "__manta_is_train"


def _stratified_split(
    dataset: Dataset, test_size: float, column: str
) -> tuple[MaterializedDataset, MaterializedDataset]:
    """Each class of ``column`` split alone, as Ray does: the last ``int(n * share)`` rows
    of a class of ``n`` rows go to test (an int ``test_size`` is a share of all rows)."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise TypeError(f"test_size must be a float in (0, 1) or a positive int, got {test_size!r}")
    if isinstance(test_size, float):
        _check_share(test_size)
        share = test_size
    else:
        dataset = dataset.materialize()  # counted, then grouped: its input runs once
        total = dataset.count()
        if not 0 < test_size < total:
            raise ValueError(
                f"test_size must be above 0 and below the dataset's {total} rows, got {test_size}"
            )
        share = test_size / total

    def mark(group: pa.Table) -> pa.Table:
        n = group.num_rows
        tests = int(n * share)
        return group.append_column(_IS_TRAIN, pa.array([True] * (n - tests) + [False] * tests))

    marked = dataset.groupby(column).map_groups(mark, batch_format="pyarrow").materialize()
    train = marked.filter(expr=_IS_TRAIN).drop_columns([_IS_TRAIN]).materialize()
    test = marked.filter(expr=f"not {_IS_TRAIN}").drop_columns([_IS_TRAIN]).materialize()
    return train, test


class SplitCoordinator:
    """An actor that runs a dataset and deals its bundles to ``n`` shards, each bundle to
    whichever asks next. Each shard's epochs are counted here (a shard's iterator may be
    pickled to a new task every epoch). A shard starting its next epoch has finished the
    last one, whether it drained it or stopped early; the dataset runs again once every
    shard has finished the current epoch. An error in the run is raised to every shard."""

    def __init__(self, dataset: Dataset, n: int) -> None:
        self._dataset = dataset
        self._cond = threading.Condition()
        self._epoch = -1
        self._stream: Iterator[RefBundle] | None = None
        self._error: BaseException | None = None
        self._shard_epoch = [-1] * n  # the epoch each shard is in
        self._finished = [-1] * n  # the last epoch each shard has finished

    def start_epoch(self, split: int) -> int:
        with self._cond:
            epoch = self._shard_epoch[split] + 1
            self._shard_epoch[split] = epoch
            self._finished[split] = max(self._finished[split], epoch - 1)
            self._cond.notify_all()
            while epoch > self._epoch >= 0 and min(self._finished) < self._epoch:
                self._cond.wait()
            if epoch > self._epoch:
                self._epoch, self._error = epoch, None
                self._stream = self._dataset._bundles()
            return epoch

    def next_bundle(self, split: int, epoch: int) -> list[Any] | None:
        with self._cond:
            if epoch != self._epoch or self._stream is None:
                return None
            if self._error is not None:
                raise self._error
            try:
                bundle = next(self._stream, None)
            except Exception as error:
                self._error = error
                raise
            if bundle is None:
                self._finished[split] = epoch
                self._cond.notify_all()
                return None
            return [bundle]


def streaming_split(dataset: Dataset, n: int, equal: bool) -> list[DataIterator]:
    from manta.data.iterator import DataIterator

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"The number of splits {n!r} is not a positive integer.")
    if equal:
        shards = split(dataset, n, equal=True)
        return [shard.iterator() for shard in shards]
    coordinator = manta.remote(SplitCoordinator).options(max_concurrency=n + 1, num_cpus=0).remote(dataset, n)
    return [
        DataIterator(_ShardBundles(coordinator, i), dataset.schema, f"split {i} of {n}") for i in range(n)
    ]


class _ShardBundles:
    """One shard's bundles, asked of the coordinator; picklable, so a shard's iterator can
    go to another process (a training worker), as many times as it likes."""

    def __init__(self, coordinator: Any, split: int) -> None:
        self._coordinator = coordinator
        self._split = split

    def __call__(self) -> Iterator[RefBundle]:
        epoch = manta.get(self._coordinator.start_epoch.remote(self._split))
        while True:
            got = manta.get(self._coordinator.next_bundle.remote(self._split, epoch))
            if got is None:
                return
            yield from got
