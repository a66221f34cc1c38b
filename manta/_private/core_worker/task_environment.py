"""The environment variables a worker sets for each task, as Ray does:
``CUDA_VISIBLE_DEVICES`` (the task's GPUs, and what was there before once a task needs
none) and ``OMP_NUM_THREADS`` (its whole CPUs, unless the user set it)."""

from __future__ import annotations

import math
import os

from manta._private.common.resources import outside_group

_UNSET = object()


class TaskEnvironment:
    def __init__(self, is_driver: bool) -> None:
        self._is_driver = is_driver
        self._cuda_before: object = _UNSET
        # The OMP_NUM_THREADS this worker set; another value there is the user's to keep.
        self._omp_set: str | None = None
        self._omp_resources: dict[str, float] | None = None  # the shape _omp_set is for

    def enter(self, gpus: list[str] | None, resources: dict[str, float]) -> None:
        self._set_visible_devices(gpus)
        self._set_omp_threads(resources)

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
        it. Never in a driver (local mode). Left set between tasks, as a Ray worker's is:
        the next task of the same shape (nearly always) then costs nothing here."""
        if self._is_driver:
            return
        current = os.environ.get("OMP_NUM_THREADS")
        if current is not None and current != self._omp_set:
            self._omp_set = None  # the user's (or their runtime_env's) from now on
            return
        if current is not None and resources == self._omp_resources:
            return  # set for a task of this shape already
        value = str(max(math.floor(outside_group(resources).get("CPU", 1.0)), 1))
        if value != current:
            os.environ["OMP_NUM_THREADS"] = value
            self._omp_set = value
        self._omp_resources = resources
