"""A dataset three times the object store's size streams through ``iter_batches`` with
bounded store use and nothing spilled (its own small-store cluster)."""

from __future__ import annotations

import numpy as np
import pytest

import manta
import manta.data as md
from manta.util import memory_report

MiB = 1024 * 1024
STORE = 128 * MiB
BLOCK = 4 * MiB


@pytest.fixture(scope="module", autouse=True)
def small_store_cluster():
    md.DataContext.get_current().enable_progress_bars = False
    context = manta.init(num_cpus=2, object_store_memory=STORE, include_dashboard=False)
    yield context
    manta.shutdown()


def _payload(batch):
    rows = len(batch["id"])
    width = BLOCK // rows
    return {"id": batch["id"], "payload": np.full((rows, width), 7, dtype=np.uint8)}


def test_three_stores_of_data_stream_through_without_spilling():
    blocks = 3 * STORE // BLOCK
    ds = md.range(blocks * 64, override_num_blocks=blocks).map_batches(_payload).map_batches(lambda b: b)
    rows = 0
    peak = 0
    for i, batch in enumerate(ds.iter_batches(batch_size=64, batch_format="numpy")):
        rows += len(batch["id"])
        assert int(batch["payload"][0, 0]) == 7
        if i % 8 == 0:
            (node,) = memory_report()
            peak = max(peak, node.used_bytes)
    (node,) = memory_report()
    assert rows == blocks * 64
    assert node.spilled_bytes == 0
    # The dataset may fill half of the store (DataContext.object_store_memory_fraction);
    # blocks in flight on top of that are a few blocks, never the whole dataset.
    assert peak <= STORE // 2 + 6 * BLOCK, f"peak store use {peak / MiB:.0f} MiB"
