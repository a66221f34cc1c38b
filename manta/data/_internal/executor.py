"""The streaming executor: runs a plan's operators at once, block by block, within a
memory budget, on a thread of its own, handing the last operator's bundles to the
consumer as they come.

Each round it moves finished bundles from operators to the operators that read them,
starts what the budget allows (operators nearest the output first, so data drains before
more is read), then waits for any task to make progress. The consumer's ``next`` takes
from the output queue; an error in any task ends the run and is raised there.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import manta
from manta.data._internal import backpressure, progress
from manta.data._internal.all_to_all import AllToAllOperator
from manta.data._internal.bundles import RefBundle
from manta.data._internal.flow_operators import LimitOperator, UnionOperator
from manta.data._internal.logical import ActorPoolStrategy
from manta.data._internal.operators import ActorMapOperator, InputOperator, MapOperator, Operator
from manta.data._internal.planner import Stage
from manta.data._internal.stats import DatasetStats
from manta.data.context import DataContext

# How long one round waits for a task; also how soon a consumer's take lets more start.
_ROUND_S = 0.05
# Output bundles the executor keeps ready for the consumer (within the memory budget).
_OUTPUT_QUEUE = 8


def resolve_budget(context: DataContext) -> backpressure.Budget:
    limits = context.execution_options.resource_limits
    resources = manta.cluster_resources()
    store = limits.object_store_memory
    if store is None:
        store = resources.get("object_store_memory", 2 * 1024**3) * context.object_store_memory_fraction
    cpus = limits.cpu if limits.cpu is not None else resources.get("CPU", 1.0)
    gpus = limits.gpu if limits.gpu is not None else resources.get("GPU", 0.0)
    return backpressure.Budget(float(store), float(cpus), float(gpus))


class StreamingExecutor:
    def __init__(
        self, root: Stage, context: DataContext, read_tasks: dict[int, list[Any]], label: str
    ) -> None:
        self._context = context
        self._budget = resolve_budget(context)
        self._ops: list[Operator] = []
        self._consumers: dict[int, list[tuple[Operator, int]]] = {}
        self._root = self._build(root, read_tasks)
        self._below = {id(op): self._downstream(op) for op in self._ops}
        self._label = label
        self._out: deque[RefBundle] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._done = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self.stats = DatasetStats([op.stats for op in self._ops])

    def _build(self, stage: Stage, read_tasks: dict[int, list[Any]]) -> Operator:
        inputs = [self._build(parent, read_tasks) for parent in stage.inputs]
        op: Operator
        if stage.kind == "input":
            op = InputOperator(stage, self._context)
        elif stage.kind in ("read", "map"):
            if isinstance(stage.compute, ActorPoolStrategy):
                op = ActorMapOperator(stage, inputs, self._context, self._budget.cpus)
            else:
                tasks = read_tasks.get(id(stage.source), []) if stage.kind == "read" else []
                op = MapOperator(stage, inputs, self._context, self._budget.cpus, tasks)
        elif stage.kind == "limit":
            op = LimitOperator(stage, inputs, self._context)
        elif stage.kind == "union":
            op = UnionOperator(stage, inputs, self._context)
        else:
            op = AllToAllOperator(stage, inputs, self._context)
        for index, parent in enumerate(inputs):
            self._consumers.setdefault(id(parent), []).append((op, index))
        self._ops.append(op)
        return op

    # -- the consumer's side ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[RefBundle]:
        self._thread = threading.Thread(target=self._run, name=f"manta-data-{self._label}", daemon=True)
        self._thread.start()
        try:
            while True:
                with self._cond:
                    while not self._out and not self._done:
                        self._cond.wait()
                    if self._out:
                        bundle = self._out.popleft()
                        self._cond.notify_all()
                    elif self._error is not None:
                        raise self._error
                    else:
                        return
                yield bundle
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    # -- the executor's thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            reporter = progress.Reporter(self._label, self._ops, self._context)
            try:
                while not self._stop:
                    self._move()
                    if self._root.finished() and not self._root.outputs:
                        break
                    self._launch()
                    self._wait()
                    reporter.update()
            finally:
                self.stats.total_s = time.monotonic() - self._started
                for op in self._ops:
                    op.stop()
                reporter.close(self._error is None and not self._stop)
        except BaseException as error:  # raised to the consumer, whatever it is
            self._error = self._error or error
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _move(self) -> None:
        now = time.monotonic()
        for op in self._ops:
            while op.outputs and (op is not self._root or len(self._out) < _OUTPUT_QUEUE):
                bundle = op.outputs.popleft()
                if op is self._root:
                    with self._cond:
                        self._out.append(bundle)
                        self._cond.notify_all()
                for consumer, index in self._consumers.get(id(op), []):
                    consumer.add_input(bundle, index)
            if op.finished() and not op.outputs:
                if op.stats.finished_at is None:
                    op.stats.finished_at = now
                    if op.stats.started_at is None:
                        op.stats.started_at = now
                    op.release()
                for consumer, index in self._consumers.get(id(op), []):
                    if not consumer.inputs_done[index]:
                        consumer.input_done(index)
        self._stop_above_limits()

    def _stop_above_limits(self) -> None:
        for op in self._ops:
            if isinstance(op, LimitOperator) and op.finished():
                for parent in op.inputs:
                    self._stop_tree(parent)

    def _stop_tree(self, op: Operator) -> None:
        if not op.stopped:
            op.stop()
        for parent in op.inputs:
            self._stop_tree(parent)

    def _usage(self, op: Operator) -> backpressure.Usage:
        """What launching ``op`` competes with: the bytes it and the operators downstream of
        it hold (up to an all-to-all, which needs all of its input whatever the pace, and
        not what is upstream, which a launch here does not add to), and every CPU and GPU."""
        held = float(op.output_bytes() + op.running() * op.output_estimate())
        for below in self._below[id(op)]:
            held += below.held_bytes() + below.running() * below.output_estimate()
        if op is self._root or self._root in self._below[id(op)]:
            with self._cond:
                held += sum(bundle.size_bytes for bundle in self._out)
        cpus = gpus = 0.0
        for each in self._ops:
            if isinstance(each, ActorMapOperator):
                pool_cpus, pool_gpus = each.actor_resources()
                cpus, gpus = cpus + pool_cpus, gpus + pool_gpus
            else:
                task_cpus, task_gpus = each.task_resources()
                cpus, gpus = cpus + each.running() * task_cpus, gpus + each.running() * task_gpus
        return backpressure.Usage(held, cpus, gpus)

    def _downstream(self, op: Operator) -> list[Operator]:
        """The operators ``op``'s output flows through, up to (not into) an all-to-all."""
        found: list[Operator] = []
        for consumer, _ in self._consumers.get(id(op), []):
            if not isinstance(consumer, AllToAllOperator):
                found += [consumer, *self._downstream(consumer)]
        return found

    def _launch(self) -> None:
        for op in reversed(self._ops):
            while op.has_work():
                waiting = self._waiting_bytes(op)
                task_cpus, task_gpus = (0.0, 0.0) if isinstance(op, ActorMapOperator) else op.task_resources()
                candidate = backpressure.Candidate(
                    op.running(), op.max_running(), waiting, op.output_estimate(), task_cpus, task_gpus
                )
                if not backpressure.may_launch(candidate, self._usage(op), self._budget):
                    break
                op.launch_one()

    def _waiting_bytes(self, op: Operator) -> int:
        """Bytes ``op`` made that nothing has started on yet."""
        waiting = sum(bundle.size_bytes for bundle in op.outputs)
        for consumer, index in self._consumers.get(id(op), []):
            waiting += consumer.queued_input_bytes(index)
        if op is self._root:
            with self._cond:
                waiting += sum(bundle.size_bytes for bundle in self._out)
        return waiting

    def _wait(self) -> None:
        owners: dict[Any, Operator] = {}
        for op in self._ops:
            for waitable in op.waitables():
                owners[waitable] = op
        if not owners:
            with self._cond:
                if not self._stop:
                    self._cond.wait(_ROUND_S)
            return
        waitables = list(owners)
        ready, _ = manta.wait(waitables, num_returns=1, timeout=_ROUND_S, fetch_local=False)
        if ready:
            ready, _ = manta.wait(waitables, num_returns=len(waitables), timeout=0, fetch_local=False)
        for waitable in ready:
            owners[waitable].on_ready(waitable)
