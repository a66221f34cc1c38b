"""Whether an operator may start another task: the memory budget and CPU slots, decided
without I/O from what the executor counts.

Memory is counted in object-store bytes a dataset holds: blocks waiting in queues, the
inputs of running tasks, and the expected output of running tasks. A task starts only if
its expected output fits in the budget, so a dataset many times the store's size streams
through it instead of filling it (and spilling). One rule keeps every pipeline moving: an
operator with nothing running and nothing waiting in its outputs may always start a task,
so a budget smaller than one block slows a dataset down but never stalls it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    object_store_bytes: float
    cpus: float
    gpus: float


@dataclass(frozen=True)
class Usage:
    """What the whole dataset holds right now."""

    object_store_bytes: float
    cpus: float
    gpus: float


@dataclass(frozen=True)
class Candidate:
    """An operator that has input for another task."""

    running: int
    max_running: int
    outputs_waiting_bytes: int
    task_output_estimate: float
    task_cpus: float
    task_gpus: float


def may_launch(candidate: Candidate, usage: Usage, budget: Budget) -> bool:
    if candidate.running >= candidate.max_running:
        return False
    if candidate.running == 0 and candidate.outputs_waiting_bytes == 0:
        return True
    if usage.object_store_bytes + candidate.task_output_estimate > budget.object_store_bytes:
        return False
    if candidate.task_cpus and usage.cpus + candidate.task_cpus > budget.cpus:
        return False
    return not (candidate.task_gpus and usage.gpus + candidate.task_gpus > budget.gpus)
