"""The environment variables a worker sets around each task, as Ray does:
``CUDA_VISIBLE_DEVICES`` (the task's GPUs) and ``OMP_NUM_THREADS`` (its whole CPUs), and
putting back what was there before when the next task needs none."""

from __future__ import annotations

import math
import os

from manta._private.common.resources import outside_group

_UNSET = object()


class TaskEnvironment:
    def __init__(self, is_driver: bool) -> None:
        self._is_driver = is_driver
        self._cuda_before: object = _UNSET
        self._omp_ours = False  # whether this worker, not its user, set OMP_NUM_THREADS

    def enter(self, gpus: list[str] | None, resources: dict[str, float]) -> None:
        self._set_visible_devices(gpus)
        self._set_omp_threads(resources)

    def leave(self, keep: bool) -> None:
        """After a task; ``keep`` (an actor keeps its settings for its life)."""
        if self._omp_ours and not keep:
            os.environ.pop("OMP_NUM_THREADS", None)
            self._omp_ours = False

    def _set_visible_devices(self, gpus: list[str] | None) -> None:
        """The task's GPUs, or what the worker had before a GPU task changed it (a CPU task
        must not see the previous task's GPUs)."""
        if gpus is not None:
            if self._cuda_before is _UNSET:
                self._cuda_before = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        elif self._cuda_before is not _UNSET:
            if self._cuda_before is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = str(self._cuda_before)
            self._cuda_before = _UNSET

    def _set_omp_threads(self, resources: dict[str, float]) -> None:
        """Its whole CPUs, at least 1, unless the user's environment (or runtime_env) sets
        it. Never in a driver (local mode)."""
        if not self._is_driver and (self._omp_ours or "OMP_NUM_THREADS" not in os.environ):
            cpus = outside_group(resources).get("CPU", 1.0)
            os.environ["OMP_NUM_THREADS"] = str(max(math.floor(cpus), 1))
            self._omp_ours = True
