"""The running form of each stage: what the streaming executor drives.

Every operator takes bundles in (``add_input``), may start work when the executor lets it
(``launch_one``), offers the executor things to wait on (``waitables``) and handles them
when ready (``on_ready``), and hands bundles on through ``outputs``. Outputs leave in input
order when ``preserve_order`` is set: each unit of work has a sequence number, and a
unit's blocks wait until every earlier unit has handed its blocks on.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

import manta
from manta.data._internal import remote_calls
from manta.data._internal.bundles import RefBundle
from manta.data._internal.logical import ActorPoolStrategy
from manta.data._internal.planner import Stage, normalized
from manta.data._internal.stats import OperatorStats
from manta.data.context import DataContext
from manta.exceptions import InternalError

logger = logging.getLogger("manta.data")
# A task whose input is larger than this runs where its input is (Ray Data's threshold);
# smaller ones are spread over the cluster.
_LARGE_INPUT_BYTES = 50 * 1024 * 1024


class Operator:
    def __init__(self, stage: Stage, inputs: list[Operator], context: DataContext) -> None:
        self.stage = stage
        self.name = stage.name
        self.inputs = inputs
        self.context = context
        self.outputs: deque[RefBundle] = deque()
        self.inputs_done = [False] * len(inputs)
        self.stats = OperatorStats(stage.name)
        self.stopped = False

    # -- driven by the executor ----------------------------------------------------------------
    def add_input(self, bundle: RefBundle, index: int) -> None:
        raise InternalError(f"{self.name} takes no input")

    def input_done(self, index: int) -> None:
        self.inputs_done[index] = True

    def has_work(self) -> bool:
        """Whether ``launch_one`` would start something."""
        return False

    def launch_one(self) -> None:
        raise InternalError(f"{self.name} has nothing to launch")

    def waitables(self) -> list[Any]:
        return []

    def on_ready(self, waitable: Any) -> None:
        raise InternalError(f"{self.name} waits on nothing")

    def finished(self) -> bool:
        """No output will come after what is in ``outputs``."""
        return all(self.inputs_done)

    def stop(self) -> None:
        """Stop early (a limit was reached downstream, or the consumer left)."""
        self.stopped = True

    def release(self) -> None:
        """Let go of what is held only for future work (an actor pool's actors), once
        ``finished``."""

    # -- what it holds, for the budget ---------------------------------------------------------
    def held_bytes(self) -> int:
        return sum(bundle.size_bytes for bundle in self.outputs)

    def queued_input_bytes(self, index: int | None = None) -> int:
        """Bytes of input (from input ``index``, or all) waiting here for work to start."""
        return 0

    def output_bytes(self) -> int:
        """Bytes this operator made that it has not handed on yet."""
        return sum(bundle.size_bytes for bundle in self.outputs)

    def running(self) -> int:
        return 0

    def task_resources(self) -> tuple[float, float]:
        args = normalized(self.stage.remote_args)
        return float(args.get("num_cpus", 1)), float(args.get("num_gpus", 0))

    def output_estimate(self) -> float:
        return 0.0

    def max_running(self) -> int:
        return 1


class InputOperator(Operator):
    """Blocks already in the store."""

    def __init__(self, stage: Stage, context: DataContext) -> None:
        super().__init__(stage, [], context)
        for ref, meta in stage.source.blocks:
            self.outputs.append(RefBundle(((ref, meta),)))
            self.stats.add_block(meta.num_rows or 0, meta.size_bytes or 0, None)

    def held_bytes(self) -> int:
        return 0  # held by whoever made them, before and after this dataset


class _KeyPickler(cloudpickle.Pickler):
    """Pickles for a content key only: refs and actor handles stand in by their ids
    (pickling them for real would count them as lent out, to a pickle nobody loads)."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, (manta.ObjectRef, manta.actor.ActorHandle)):
            return repr(obj)
        return None


def content_key(value: Any) -> str:
    stream = io.BytesIO()
    _KeyPickler(stream, protocol=5).dump(value)
    return hashlib.sha256(stream.getvalue()).hexdigest()


@dataclass(frozen=True)
class _Queued:
    seq: int
    items: tuple[Any, ...]
    size: int
    attempts: int = 0


@dataclass(eq=False)
class _Unit:
    """One task (or actor call) of a map stage and what it has made so far."""

    seq: int
    items: tuple[Any, ...]
    input_bytes: int
    stream: Any = None
    actor: Any = None
    pending_block: Any = None
    blocks: list[tuple[Any, Any]] = field(default_factory=list)
    done: bool = False
    attempts: int = 0


class MapOperator(Operator):
    """A read or map stage run as tasks; ``ActorMapOperator`` runs it on actors."""

    # Whether a unit's blocks may go on before the unit ends (an actor's may not: if the
    # actor dies, its unit is redone from the start).
    streams_partial_output = True

    def __init__(
        self,
        stage: Stage,
        inputs: list[Operator],
        context: DataContext,
        budget_cpus: float,
        read_tasks: Sequence[Any] = (),
    ) -> None:
        super().__init__(stage, inputs, context)
        self._queue: deque[_Queued] = deque()
        self._gathering: list[RefBundle] = []
        self._units: dict[int, _Unit] = {}
        self._next_seq = 0
        self._next_out = 0
        self._by_stream: dict[Any, _Unit] = {}
        self._estimates: deque[float] = deque(maxlen=20)
        self._errored = 0
        # Keyed by content, so a worker that ran this chain before (an earlier run of the
        # same dataset) does not load another copy of it.
        self._chain_key = content_key(stage.chain)
        self._chain_holder = [manta.put(stage.chain)]
        cpus, _ = self.task_resources()
        size = getattr(stage.compute, "size", None)
        self._cap = int(size or max(1, budget_cpus // max(cpus, 1e-9)))
        for task in read_tasks:
            self._enqueue((task,), 0)

    def _enqueue(self, items: tuple[Any, ...], size: int) -> None:
        self._queue.append(_Queued(self._next_seq, items, size))
        self._next_seq += 1

    def add_input(self, bundle: RefBundle, index: int) -> None:
        want = self.stage.min_rows_per_bundle
        if want is None:
            self._enqueue(tuple(bundle.refs), bundle.size_bytes)
            return
        self._gathering.append(bundle)
        if sum(b.num_rows for b in self._gathering) >= want:
            self._flush_gathering()

    def _flush_gathering(self) -> None:
        if self._gathering:
            joined = RefBundle.join(self._gathering)
            self._gathering = []
            self._enqueue(tuple(joined.refs), joined.size_bytes)

    def input_done(self, index: int) -> None:
        super().input_done(index)
        if all(self.inputs_done):
            self._flush_gathering()

    def has_work(self) -> bool:
        return bool(self._queue) and not self.stopped

    def max_running(self) -> int:
        return self._cap

    def running(self) -> int:
        return sum(1 for unit in self._units.values() if not unit.done)

    def queued_input_bytes(self, index: int | None = None) -> int:
        return sum(queued.size for queued in self._queue) + sum(b.size_bytes for b in self._gathering)

    def output_bytes(self) -> int:
        made = sum(meta.size_bytes or 0 for unit in self._units.values() for _, meta in unit.blocks)
        return super().output_bytes() + made

    def held_bytes(self) -> int:
        inputs = sum(unit.input_bytes for unit in self._units.values() if not unit.done)
        return self.output_bytes() + self.queued_input_bytes() + inputs

    def output_estimate(self) -> float:
        if self._estimates:
            return sum(self._estimates) / len(self._estimates)
        if self._queue and self._queue[0].size:
            return float(self._queue[0].size)
        return float(min(self.context.target_max_block_size, 64 * 1024 * 1024))

    def launch_one(self) -> None:
        queued = self._queue.popleft()
        unit = _Unit(queued.seq, queued.items, queued.size, attempts=queued.attempts)
        self._units[unit.seq] = unit
        self._start(unit)
        if self.stats.started_at is None:
            self.stats.started_at = time.monotonic()

    def _start(self, unit: _Unit) -> None:
        options = dict(self.stage.remote_args)
        if "scheduling_strategy" not in options:
            large = unit.input_bytes > _LARGE_INPUT_BYTES
            options["scheduling_strategy"] = "DEFAULT" if large else self.context.scheduling_strategy
        options.update(name=self.name, num_returns="streaming")
        remote = manta.remote(remote_calls.map_task).options(**options)
        unit.stream = remote.remote(
            self._chain_key, self._chain_holder, self.context.target_max_block_size, unit.seq, *unit.items
        )
        self._by_stream[unit.stream] = unit

    def waitables(self) -> list[Any]:
        return list(self._by_stream)

    def on_ready(self, waitable: Any) -> None:
        unit = self._by_stream[waitable]
        try:
            self._drain(unit)
        except Exception as error:
            if not self._recover(unit, error) and not self._tolerate(unit, error):
                raise
        self._emit()

    def _drain(self, unit: _Unit) -> None:
        """Takes every item the unit's stream has ready; each block comes with its metadata."""
        while True:
            try:
                ref = unit.stream._next_sync(0)
            except StopIteration:
                self._unit_done(unit)
                return
            if ref.is_nil():
                return
            if unit.pending_block is None:
                unit.pending_block = ref
                continue
            meta = manta.get(ref)
            unit.blocks.append((unit.pending_block, meta))
            unit.pending_block = None
            self.stats.add_block(meta.num_rows or 0, meta.size_bytes or 0, meta.exec_stats)

    def _unit_done(self, unit: _Unit) -> None:
        if unit.pending_block is not None:
            manta.get(unit.pending_block)  # the task's error, raised here
            raise InternalError(f"{self.name}: a task ended with a block but no metadata")
        del self._by_stream[unit.stream]
        unit.done = True
        unit.stream = None
        unit.items = ()
        self.stats.tasks_done += 1
        self._estimates.append(float(sum(meta.size_bytes or 0 for _, meta in unit.blocks)))

    def _recover(self, unit: _Unit, error: Exception) -> bool:
        """Whether a failed unit was set to run again (actors override this)."""
        return False

    def _tolerate(self, unit: _Unit, error: Exception) -> bool:
        """Whether the failed unit may be skipped (``DataContext.max_errored_blocks``, -1:
        any number). Its blocks not yet passed on are dropped; a task's blocks may already
        have gone on before it failed (an actor's never do)."""
        allowed = self.context.max_errored_blocks
        if allowed >= 0 and self._errored >= allowed:
            return False
        self._errored += 1
        logger.warning("%s: skipping a failed block (%d so far): %s", self.name, self._errored, error)
        if unit.stream is not None:
            self._by_stream.pop(unit.stream, None)
            manta.cancel(unit.stream, force=True)  # it may still be running
            unit.stream = None
        unit.blocks, unit.pending_block, unit.items, unit.done = [], None, (), True
        return True

    def _emit(self) -> None:
        preserve = self.context.execution_options.preserve_order
        for seq in sorted(self._units):
            unit = self._units[seq]
            if preserve and seq != self._next_out:
                break
            if unit.blocks and (unit.done or self.streams_partial_output):
                for block in unit.blocks:
                    self.outputs.append(RefBundle((block,)))
                unit.blocks = []
            if unit.done:
                del self._units[seq]
                if preserve:
                    self._next_out += 1
            elif preserve:
                break

    def finished(self) -> bool:
        if self.stopped:
            return True
        return super().finished() and not self._queue and not self._gathering and not self._units

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._gathering = []
        for unit in self._units.values():
            if unit.stream is not None:
                # Forced: a polite cancel waits for the task to get back to Python code (a
                # numpy call can hold its CPU for seconds); the dataset's reader is gone.
                manta.cancel(unit.stream, force=True)
        self._units.clear()
        self._by_stream.clear()


# The remote arguments of a map that apply to its pool's actors.
_ACTOR_OPTIONS = (
    "num_cpus",
    "num_gpus",
    "resources",
    "memory",
    "accelerator_type",
    "label_selector",
    "scheduling_strategy",
    "runtime_env",
)


@dataclass(eq=False)
class _PoolActor:
    handle: Any
    ready_ref: Any
    ready: bool = False
    in_flight: int = 0


def pool_size_wanted(size: int, starting: int, queued: int, free_slots: int, low: int, high: int) -> int:
    """How many actors a pool should have: at least ``low``; one more (up to ``high``)
    when work waits, every slot is taken and no actor is already starting."""
    if size < low:
        return low
    if queued and not free_slots and not starting and size < high:
        return size + 1
    return size


class ActorMapOperator(MapOperator):
    """A map stage on an autoscaling pool of actors (``ActorPoolStrategy``). An actor that
    dies is replaced and its unit redone from the start, so a unit's blocks go on only when
    the unit has ended. A pool without a ``max_size`` leaves room for one task of the stage
    feeding it: actors holding every CPU would leave their own input no CPU to be made on."""

    streams_partial_output = False

    def __init__(
        self, stage: Stage, inputs: list[Operator], context: DataContext, budget_cpus: float
    ) -> None:
        super().__init__(stage, inputs, context, budget_cpus)
        strategy = stage.compute
        assert isinstance(strategy, ActorPoolStrategy)
        cpus, _gpus = self.task_resources()
        feeder = max((op.task_resources()[0] for op in _task_feeders(inputs)), default=0.0)
        pools = sum(pool.max_cpus() for pool in _upstream_pools(inputs))
        affordable = int((budget_cpus - feeder - pools) // cpus) if cpus else 1_000_000
        self._low = int(strategy.min_size or 1)
        self._high = int(strategy.max_size or max(self._low, affordable))
        if feeder and cpus * self._low + feeder > budget_cpus:
            logger.warning(
                "%s: its pool of at least %d actors takes %g of the %g CPUs, leaving its input no "
                "CPU to run on; lower concurrency or num_cpus",
                self.name, self._low, cpus * self._low, budget_cpus,
            )  # fmt: skip
        self._per_actor = int(strategy.max_tasks_in_flight_per_actor or context.max_tasks_in_flight_per_actor)
        self._actors: list[_PoolActor] = []
        self._released = False
        self._init_failures = 0
        self._worker = manta.remote(remote_calls.MapWorker)

    def _scale(self) -> None:
        if self.stopped or self._released:
            return
        if all(self.inputs_done) and not self._queue:
            # Nothing more will come: idle actors go, and none is started again.
            for actor in [a for a in self._actors if a.ready and not a.in_flight]:
                self._remove(actor)
            return
        starting = sum(1 for a in self._actors if not a.ready)
        free = sum(self._per_actor - a.in_flight for a in self._actors if a.ready)
        want = pool_size_wanted(len(self._actors), starting, len(self._queue), free, self._low, self._high)
        while len(self._actors) < want:
            options = {k: v for k, v in self.stage.remote_args.items() if k in _ACTOR_OPTIONS}
            options.setdefault("num_cpus", 1)
            handle = self._worker.options(**options, max_restarts=0).remote(
                self._chain_key, self._chain_holder, self.context.target_max_block_size
            )
            self._actors.append(_PoolActor(handle, handle.ready.remote()))

    def has_work(self) -> bool:
        self._scale()
        return (
            bool(self._queue)
            and not self.stopped
            and any(a.ready and a.in_flight < self._per_actor for a in self._actors)
        )

    def max_running(self) -> int:
        return max(1, sum(self._per_actor for a in self._actors if a.ready))

    def _start(self, unit: _Unit) -> None:
        actor = min((a for a in self._actors if a.ready), key=lambda a: a.in_flight)
        actor.in_flight += 1
        unit.actor = actor
        unit.stream = actor.handle.run.options(num_returns="streaming").remote(unit.seq, *unit.items)
        self._by_stream[unit.stream] = unit

    def _unit_done(self, unit: _Unit) -> None:
        actor = unit.actor
        super()._unit_done(unit)
        self._free_slot(unit, actor)

    def _free_slot(self, unit: _Unit, actor: _PoolActor | None) -> None:
        if actor is not None:
            actor.in_flight -= 1
            unit.actor = None

    def _tolerate(self, unit: _Unit, error: Exception) -> bool:
        actor = unit.actor
        tolerated = super()._tolerate(unit, error)
        if tolerated:
            self._free_slot(unit, actor)
            if actor is not None and isinstance(error, manta.exceptions.RayActorError):
                self._remove(actor)  # dead: no more units go to it
        return tolerated

    def waitables(self) -> list[Any]:
        return [a.ready_ref for a in self._actors if not a.ready] + super().waitables()

    def on_ready(self, waitable: Any) -> None:
        for actor in self._actors:
            if not actor.ready and actor.ready_ref is waitable:
                self._actor_ready(actor)
                return
        super().on_ready(waitable)

    def _actor_ready(self, actor: _PoolActor) -> None:
        """An actor answered its first call, or died first: a constructor that raised ends
        the dataset with its error (as in Ray); an actor that died before it was ready is
        replaced, up to ``actor_init_max_retries`` times."""
        try:
            manta.get(actor.ready_ref)
        except manta.exceptions.RayActorError as error:
            self._init_failures += 1
            if error.cause is not None or self._init_failures > self.context.actor_init_max_retries:
                raise
            self._remove(actor)  # the next round's _scale starts another
            return
        actor.ready = True

    def _recover(self, unit: _Unit, error: Exception) -> bool:
        if not isinstance(error, manta.exceptions.RayActorError):
            return False
        if unit.attempts >= self.context.max_map_retries:
            return False
        if unit.actor is not None:
            self._remove(unit.actor)
        self._by_stream.pop(unit.stream, None)
        del self._units[unit.seq]
        self._queue.appendleft(_Queued(unit.seq, unit.items, unit.input_bytes, unit.attempts + 1))
        return True

    def _remove(self, actor: _PoolActor) -> None:
        if actor in self._actors:  # an actor with several units is removed by the first to fail
            self._actors.remove(actor)
            manta.kill(actor.handle)

    def release(self) -> None:
        self._released = True
        for actor in list(self._actors):
            self._remove(actor)

    def stop(self) -> None:
        super().stop()
        self.release()

    def actor_resources(self) -> tuple[float, float]:
        cpus, gpus = self.task_resources()
        return cpus * len(self._actors), gpus * len(self._actors)

    def max_cpus(self) -> float:
        return self.task_resources()[0] * self._high


def _upstream(inputs: list[Operator]) -> list[Operator]:
    """Every operator feeding these, however far up, up to an all-to-all (which has
    finished before anything after it starts)."""
    found: list[Operator] = []
    for op in inputs:
        found.append(op)
        if op.stage.kind != "all_to_all":
            found.extend(_upstream(op.inputs))
    return found


def _task_feeders(inputs: list[Operator]) -> list[Operator]:
    """The stages run as tasks that feed these inputs, however far up: they need a CPU
    while a pool below them holds its actors."""
    return [
        op for op in _upstream(inputs) if isinstance(op, MapOperator) and not isinstance(op, ActorMapOperator)
    ]


def _upstream_pools(inputs: list[Operator]) -> list[ActorMapOperator]:
    return [op for op in _upstream(inputs) if isinstance(op, ActorMapOperator)]
