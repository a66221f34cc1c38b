"""The node daemon's metrics: its host (CPU, memory, disk), object store, scheduler and
workers, the user metrics its processes report, and how long its requests take.

Read from the components' ``statistics()`` when asked (``GetMetrics``, from the head's
HTTP service): nothing is counted on the way, so leases and objects cost nothing more.
Everything is read on the event loop; an exposition with many user series is rendered
on a thread (10,000 take ~0.1 s), so requests are not held up meanwhile.
Every series carries the node's ``NodeId`` and ``NodeAddress``; user metrics also carry
the ``WorkerId`` of the process that recorded them. Names: ``common/metric_defs.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import psutil

from manta._private.common import metric_defs as md
from manta._private.common.ids import NodeID, WorkerID
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.node.memory_monitor import MemoryMonitor
from manta._private.node.scheduler import Scheduler
from manta._private.node.store_service import StoreService
from manta._private.node.user_metrics import NodeUserMetrics
from manta._private.rpc.latency import LatencyHistogram
from manta._private.rpc.messages import ReportMetrics

if TYPE_CHECKING:
    from prometheus_client.core import Metric

logger = logging.getLogger(__name__)
_PROBLEMS = RateLimitedLog(time.monotonic)
_COMPONENT = "node"
# Up to this many user series, an exposition is rendered on the loop (~10 ms at most):
# cheaper than a thread for the usual few.
_RENDER_ON_LOOP_MAX = 1_000


class NodeMetrics:
    def __init__(
        self,
        node_id: NodeID,
        host: str,
        session_dir: str,
        scheduler: Scheduler,
        memory: MemoryMonitor,
        store: Callable[[], StoreService | None],
        latency: LatencyHistogram,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.labels = (node_id.hex(), host)
        self._session_dir = session_dir
        self._scheduler = scheduler
        self._memory = memory
        self._store = store
        self.latency = latency
        self._clock = clock
        self.user = NodeUserMetrics()
        self._cpu, self._cpu_read_at = 0.0, -1.0

    # -- user metrics ----------------------------------------------------------------------
    def report(self, worker_id: WorkerID | None, msg: ReportMetrics) -> None:
        """A process's report (from its connection: only registered processes report)."""
        if worker_id is None:
            return
        for problem in self.user.apply(worker_id.hex(), msg.definitions, msg.samples, self._clock()).problems:
            _PROBLEMS.log(logger, f"user metric refused: {problem}")

    def worker_gone(self, worker_id: WorkerID) -> None:
        self.user.worker_gone(worker_id.hex(), self._clock())

    # -- the exposition --------------------------------------------------------------------
    async def exposition(self) -> str:
        from manta._private.common import exposition as ex  # see its docstring: imported when first asked

        self.user.expire(self._clock())
        families = [
            *self._host(ex),
            *self._store_families(ex),
            *self._scheduler_families(ex),
            ex.family(
                md.NODE_METRICS["ray_memory_manager_worker_eviction"],
                [((), self._memory.statistics().kills)],
                self.labels,
            ),
            ex.family(
                md.NODE_METRICS["manta_metrics_dropped_samples"], [((), self.user.dropped)], self.labels
            ),
            ex.histogram(
                md.RPC_LATENCY.name,
                md.RPC_LATENCY.help,
                (*md.NODE_LABELS, *md.RPC_LATENCY.labels),
                self.latency.buckets_ms,
                (
                    ((*self.labels, method, _COMPONENT), counts)
                    for method, counts in sorted(self.latency.by_method.items())
                ),
            ),
        ]
        user = self.user.metrics()  # copies: reports go on while a thread renders them
        if len(self.user) <= _RENDER_ON_LOOP_MAX:
            return _render(ex, families, user, self.labels)
        return await asyncio.to_thread(_render, ex, families, user, self.labels)

    def _host(self, ex: Any) -> Iterator[Metric]:
        d, labels = md.NODE_METRICS, self.labels
        memory = psutil.virtual_memory()
        yield ex.family(d["ray_node_cpu_utilization"], [((), self._cpu_percent())], labels)
        yield ex.family(d["ray_node_cpu_count"], [((), psutil.cpu_count() or 0)], labels)
        # Used as Ray counts it: what is not available (page cache the kernel can drop is).
        yield ex.family(d["ray_node_mem_used"], [((), memory.total - memory.available)], labels)
        yield ex.family(d["ray_node_mem_available"], [((), memory.available)], labels)
        yield ex.family(d["ray_node_mem_total"], [((), memory.total)], labels)
        try:
            disk = psutil.disk_usage(self._session_dir)
        except OSError:
            return  # the session directory is gone (the node is stopping)
        yield ex.family(d["ray_node_disk_usage"], [((), disk.used)], labels)
        yield ex.family(d["ray_node_disk_free"], [((), disk.free)], labels)

    def _cpu_percent(self) -> float:
        """Host CPU use since the previous reading (psutil keeps it; the first reads 0), read
        again at most every second: scrapes that come close together (Prometheus's and the
        head's history) would otherwise measure a few milliseconds."""
        now = self._clock()
        if now - self._cpu_read_at >= 1.0:
            self._cpu, self._cpu_read_at = psutil.cpu_percent(interval=None), now
        return self._cpu

    def _store_families(self, ex: Any) -> Iterator[Metric]:
        service = self._store()
        if service is None:
            return  # not started yet
        d, labels = md.NODE_METRICS, self.labels
        stats = service.statistics()
        yield ex.family(
            d["ray_object_store_memory"],
            [(("MMAP_SHM", ""), stats.used_bytes), (("SPILLED", ""), stats.spilled_bytes)],
            labels,
        )
        yield ex.family(d["ray_object_store_used_memory"], [((), stats.used_bytes)], labels)
        yield ex.family(d["ray_object_store_available_memory"], [((), stats.free_bytes)], labels)
        yield ex.family(d["ray_object_store_num_local_objects"], [((), stats.num_objects)], labels)
        yield ex.family(
            d["ray_spill_manager_request_total"],
            [(("Spilled",), service.spills[0]), (("Restored",), service.restores[0])],
            labels,
        )
        yield ex.family(d["manta_object_store_spilled_bytes"], [((), service.spills[1])], labels)
        yield ex.family(d["manta_object_store_restored_bytes"], [((), service.restores[1])], labels)

    def _scheduler_families(self, ex: Any) -> Iterator[Metric]:
        d, labels = md.NODE_METRICS, self.labels
        stats = self._scheduler.statistics()
        available = dict(stats.available)
        service = self._store()
        if service is not None and "object_store_memory" in available:
            # Objects, not leases, use the store up (as the node's heartbeats report it).
            total = dict(stats.total)["object_store_memory"]
            available["object_store_memory"] = max(total - service.store.allocator.used_bytes, 0.0)
        rows = []
        for name, total in stats.total:
            free = available.get(name, 0.0)
            rows += [((name, "USED"), total - free), ((name, "AVAILABLE"), free)]
        yield ex.family(d["ray_resources"], rows, labels)
        waiting = stats.waiting_for_workers + stats.waiting_for_resources + stats.infeasible
        yield ex.family(
            d["ray_scheduler_tasks"], [(("Waiting",), waiting), (("Executing",), stats.leases)], labels
        )
        yield ex.family(
            d["ray_scheduler_unscheduleable_tasks"],
            [
                (("Infeasible",), stats.infeasible),
                (("WaitingForResources",), stats.waiting_for_resources),
                (("WaitingForWorkers",), stats.waiting_for_workers),
            ],
            labels,
        )
        yield ex.family(d["ray_internal_num_processes_started"], [((), stats.workers_started)], labels)
        yield ex.family(d["manta_workers"], [((state,), n) for state, n in stats.workers], labels)


def _render(ex: Any, families: list[Metric], user: Any, labels: tuple[str, str]) -> str:
    return str(ex.render([*families, *ex.user_families(user, labels)]).decode())
