"""A node daemon's metrics, from real components (scheduler, store, memory monitor) and
reports of user metrics, read back through prometheus_client's parser."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from manta._private.common import exposition as ex
from manta._private.common import metric_defs as md
from manta._private.common.clock import FakeClock
from manta._private.common.config import Config
from manta._private.common.exposition import parse
from manta._private.common.ids import JobID, NodeID, ObjectID, WorkerID
from manta._private.common.resources import NodeResources, to_unit_map
from manta._private.common.user_metrics import check_definition
from manta._private.node import metrics as node_metrics
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
    got = values(asyncio.run(node.exposition()))
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
    assert ("ray_depth", on_node | {("WorkerId", worker.hex()), ("queue", "q")}) in values(
        asyncio.run(node.exposition())
    )
    clock[0] += 1
    assert not any(name == "ray_depth" for name, _labels in values(asyncio.run(node.exposition())))


def bare_node(tmp_path) -> NodeMetrics:
    return NodeMetrics(
        NODE,
        "h",
        str(tmp_path),
        scheduler(),
        MemoryMonitor(MonitorConfig(0.9), FakeClock(), "n"),
        lambda: None,
        LatencyHistogram(),
    )


def test_a_node_not_started_yet_has_no_store_metrics(tmp_path) -> None:
    node = bare_node(tmp_path)
    names = {name for name, _labels in values(asyncio.run(node.exposition()))}
    assert "ray_node_mem_used" in names and "ray_object_store_used_memory" not in names


def test_many_user_series_are_rendered_off_the_loop_and_a_few_on_it(tmp_path, monkeypatch) -> None:
    node = bare_node(tmp_path)
    gauge = check_definition("depth", md.GAUGE, "Depth.", ("queue",))
    node.report(WorkerID.from_random(), ReportMetrics([gauge.wire()], [["depth", [q], 1] for q in "abc"]))
    rendered_on: list[threading.Thread] = []
    render = ex.render

    def recording_render(families: list) -> bytes:
        rendered_on.append(threading.current_thread())
        return render(families)

    monkeypatch.setattr(ex, "render", recording_render)

    async def scrape() -> str:
        text = await node.exposition()
        rendered_on.append(threading.current_thread())  # the loop's
        return text

    for on_loop_max, off_loop in ((3, False), (2, True)):
        monkeypatch.setattr(node_metrics, "_RENDER_ON_LOOP_MAX", on_loop_max)
        rendered_on.clear()
        text = asyncio.run(scrape())
        assert sum(s.name == "ray_depth" for fam in ex.parse(text) for s in fam.samples) == 3
        assert (rendered_on[0] is not rendered_on[1]) == off_loop
