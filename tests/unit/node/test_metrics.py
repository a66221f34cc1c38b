"""A node daemon's metrics, from real components (scheduler, store, memory monitor) and
reports of user metrics, read back through prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from manta._private.common import metric_defs as md
from manta._private.common.clock import FakeClock
from manta._private.common.config import Config
from manta._private.common.exposition import parse
from manta._private.common.ids import JobID, NodeID, ObjectID, WorkerID
from manta._private.common.resources import NodeResources, to_unit_map
from manta._private.common.user_metrics import check_definition
from manta._private.node.memory_monitor import MemoryMonitor, MonitorConfig
from manta._private.node.metrics import NodeMetrics
from manta._private.node.scheduler import LeaseRequest, Scheduler, SchedulerConfig, StartWorker
from manta._private.node.store_service import StoreService
from manta._private.rpc.latency import LatencyHistogram
from manta._private.rpc.messages import ReportMetrics

NODE = NodeID.from_random()
JOB = JobID.from_int(1)
STORE_BYTES = 4 << 20


@pytest.fixture
def store(tmp_path) -> Iterator[StoreService]:
    service = StoreService(Config(), STORE_BYTES, str(tmp_path), FakeClock())
    yield service
    service.close()


def scheduler() -> Scheduler:
    s = Scheduler(
        NodeResources({"CPU": 2, "object_store_memory": STORE_BYTES}),
        FakeClock(),
        SchedulerConfig(soft_limit=2, max_starting=1, idle_timeout_s=5),
    )
    [start] = s.prestart(1)
    assert isinstance(start, StartWorker)
    s.worker_registered(start.worker_id)
    for nonce, cpus in enumerate((1, 1, 1, 4)):  # granted, waits for a worker, waits for CPU, never fits
        s.request(LeaseRequest(("c", nonce), "c", JOB, to_unit_map({"CPU": cpus}), ""))
    return s


def values(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for fam in parse(text) for s in fam.samples}


def test_the_node_exports_every_metric_named_for_it_with_its_labels(tmp_path, store: StoreService) -> None:
    s, clock = scheduler(), [1000.0]
    node = NodeMetrics(
        NODE,
        "10.1.2.3",
        str(tmp_path),
        s,
        MemoryMonitor(MonitorConfig(0.9), FakeClock(), "n"),
        lambda: store,
        LatencyHistogram(),
        clock=lambda: clock[0],
    )
    store.store.create(ObjectID.from_random(), 1 << 20, WorkerID.from_random(), "writer")
    store.spills, store.restores = [2, 300], [1, 100]
    node.latency.observe("RequestLease", 0.5)
    worker = WorkerID.from_random()
    gauge = check_definition("depth", md.GAUGE, "Depth.", ("queue",))
    node.report(worker, ReportMetrics([gauge.wire()], [["depth", ["q"], 7], ["depth", [1], 1]]))
    node.report(None, ReportMetrics([gauge.wire()], [["depth", ["q"], 99]]))  # not a registered process
    got = values(node.exposition())
    exported = {name for name, _labels in got}
    for definition in md.NODE_METRICS.values():
        assert exported & set(md.series_names(definition.name, definition.kind)), definition.name
    on_node = frozenset({("NodeId", NODE.hex()), ("NodeAddress", "10.1.2.3")})
    assert all(on_node <= labels for _name, labels in got)

    def value(name: str, **labels: str) -> float:
        return got[(name, on_node | frozenset(labels.items()))]

    assert value("ray_scheduler_tasks", State="Executing") == 1
    assert value("ray_scheduler_tasks", State="Waiting") == 3
    assert value("ray_scheduler_unscheduleable_tasks", Reason="Infeasible") == 1
    assert value("ray_scheduler_unscheduleable_tasks", Reason="WaitingForResources") == 1
    assert value("ray_scheduler_unscheduleable_tasks", Reason="WaitingForWorkers") == 1
    assert value("ray_internal_num_processes_started") == 2
    assert value("ray_resources", Name="CPU", State="USED") == 1
    assert value("ray_resources", Name="object_store_memory", State="USED") == 1 << 20
    assert value("ray_object_store_used_memory") == 1 << 20
    assert value("ray_object_store_memory", Location="MMAP_SHM", ObjectState="") == 1 << 20
    assert value("ray_spill_manager_request_total", Type="Spilled") == 2
    assert value("manta_object_store_restored_bytes_total") == 100
    assert value("ray_grpc_server_req_process_time_ms_count", Method="RequestLease", Component="node") == 1
    assert value("ray_node_mem_total") > 0 and value("ray_node_cpu_count") >= 1
    assert value("ray_depth", WorkerId=worker.hex(), queue="q") == 7
    assert value("manta_metrics_dropped_samples_total") == 1  # the sample with a number for a tag
    # The process leaves; its series stay for the retention (10 minutes), then go.
    node.worker_gone(worker)
    clock[0] += 599
    assert ("ray_depth", on_node | {("WorkerId", worker.hex()), ("queue", "q")}) in values(node.exposition())
    clock[0] += 1
    assert not any(name == "ray_depth" for name, _labels in values(node.exposition()))


def test_a_node_not_started_yet_has_no_store_metrics(tmp_path) -> None:
    node = NodeMetrics(
        NODE,
        "h",
        str(tmp_path),
        scheduler(),
        MemoryMonitor(MonitorConfig(0.9), FakeClock(), "n"),
        lambda: None,
        LatencyHistogram(),
    )
    names = {name for name, _labels in values(node.exposition())}
    assert "ray_node_mem_used" in names and "ray_object_store_used_memory" not in names
