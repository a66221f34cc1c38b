"""Running a logical plan: plan the stages, list the reads' tasks, start the executor.

Reads are listed when a dataset first runs (not when it is made), with the read's
parallelism resolved then from the data's size and the cluster, by Ray's rule: at least
``read_op_min_num_blocks`` blocks (fewer for small data, never blocks under
``target_min_block_size``), never blocks over ``target_max_block_size``, and at least
twice the CPUs.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import manta
from manta.data._internal import logical, optimizer, planner
from manta.data._internal.executor import StreamingExecutor
from manta.data.context import DataContext


def ensure_cluster() -> None:
    """Datasets start a local cluster when none is running, as Ray Data does."""
    if not manta.is_initialized():
        manta.init()


def resolve_parallelism(requested: int, data_size: int | None, context: DataContext) -> int:
    if requested > 0:
        return requested
    cpus = int(manta.cluster_resources().get("CPU", 1)) if manta.is_initialized() else 1
    if data_size is None:
        return max(context.read_op_min_num_blocks, 2 * cpus)
    safe = max(1, math.ceil(data_size / context.target_max_block_size))
    reasonable = max(1, math.ceil(data_size / context.target_min_block_size))
    return max(min(context.read_op_min_num_blocks, reasonable), safe, 2 * cpus)


def read_tasks(read: logical.Read, context: DataContext) -> list[Any]:
    """The read's tasks, listed once per read node."""
    if not read.listed_tasks:
        ensure_cluster()
        size = read.datasource.estimate_inmemory_data_size()
        parallelism = resolve_parallelism(read.parallelism, size, context)
        read.listed_tasks.extend(read.datasource.get_read_tasks(parallelism))
    return list(read.listed_tasks)


def read_rows(read: logical.Read, context: DataContext) -> int | None:
    counts = [task.metadata.num_rows for task in read_tasks(read, context)]
    return None if any(c is None for c in counts) else sum(counts)


def run(op: logical.LogicalOp, context: DataContext) -> StreamingExecutor:
    ensure_cluster()
    op = optimizer.optimize(op, lambda read: next((t.schema for t in read_tasks(read, context)), None))
    root = planner.plan(op)
    tasks = {id(node): read_tasks(node, context) for node in op.walk() if isinstance(node, logical.Read)}
    return StreamingExecutor(root, context, tasks, f"dataset_{uuid.uuid4().hex[:8]}")
