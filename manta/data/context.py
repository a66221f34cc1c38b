"""``DataContext``: the settings a dataset runs with (Ray's names and defaults).

One context per driver process (``DataContext.get_current()``); a dataset takes a copy of
it when it is created, so changing the context later affects datasets created later, as
in Ray. Execution reads the copy: tasks never read a global.
"""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

MiB = 1024 * 1024


@dataclass
class ExecutionResources:
    """Limits on what one dataset's execution may use; ``None`` means "decide from the
    cluster" (all CPUs and GPUs, half of the object store's memory)."""

    cpu: float | None = None
    gpu: float | None = None
    object_store_memory: float | None = None

    @classmethod
    def for_limits(
        cls, cpu: float | None = None, gpu: float | None = None, object_store_memory: float | None = None
    ) -> ExecutionResources:
        return cls(cpu=cpu, gpu=gpu, object_store_memory=object_store_memory)


@dataclass
class ExecutionOptions:
    """How a dataset executes. Unlike Ray, ``preserve_order`` is on by default: outputs come
    in input order (a slow block holds later ones back, within the memory budget), so the
    same program gives the same rows in the same order every run."""

    resource_limits: ExecutionResources = field(default_factory=ExecutionResources)
    preserve_order: bool = True
    verbose_progress: bool | None = None
    actor_locality_enabled: bool = True
    locality_with_output: bool = False


@dataclass
class DataContext:
    """Settings for the datasets this process creates.

    Attributes users change most: ``target_max_block_size`` (a block above it is split,
    128 MiB), ``read_op_min_num_blocks`` (reads make at least this many blocks, 200),
    ``execution_options`` (resource limits and ordering), ``enable_progress_bars``,
    ``max_errored_blocks`` (blocks whose failure is skipped with a warning; 0: none, -1:
    any), ``max_map_retries`` (times a block is redone after its actor died),
    ``actor_init_max_retries`` (actors of a pool replaced after dying before they were
    ready), ``scheduling_strategy`` (of map tasks with small inputs; larger ones run where
    their input is), ``object_store_memory_fraction`` (the share of the cluster's object
    store one dataset may fill when ``resource_limits.object_store_memory`` is unset; 0.5).
    ``use_push_based_shuffle``, ``eager_free``, ``enable_operator_progress_bars`` and the
    locality options are accepted, as Ray programs set them, and change nothing here.
    """

    target_max_block_size: int = 128 * MiB
    target_min_block_size: int = 1 * MiB
    read_op_min_num_blocks: int = 200
    execution_options: ExecutionOptions = field(default_factory=ExecutionOptions)
    # Ray's switch, honoured under its name so that scripts (and CI setups) that set it
    # for Ray get the same quiet output.
    enable_progress_bars: bool = field(
        default_factory=lambda: os.environ.get("RAY_DATA_DISABLE_PROGRESS_BARS", "0") in ("", "0")
    )
    enable_operator_progress_bars: bool = True
    max_errored_blocks: int = 0
    object_store_memory_fraction: float = 0.5
    max_tasks_in_flight_per_actor: int = 4
    actor_init_max_retries: int = 3
    max_map_retries: int = 3
    use_push_based_shuffle: bool = False
    scheduling_strategy: Any = "SPREAD"
    eager_free: bool = True

    _current: ClassVar[DataContext | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @staticmethod
    def get_current() -> DataContext:
        """This process's context, made with the defaults on first use."""
        with DataContext._lock:
            if DataContext._current is None:
                DataContext._current = DataContext()
            return DataContext._current

    @staticmethod
    def _set_current(context: DataContext) -> None:
        with DataContext._lock:
            DataContext._current = context

    def copy(self) -> DataContext:
        return copy.deepcopy(self)
