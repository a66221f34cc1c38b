"""The gcs's metrics: tasks and actors counted by state in Ray's names and labels, and
the rest of its families, read back through prometheus_client's parser."""

from __future__ import annotations

from manta._private.common import metric_defs as md
from manta._private.common import task_events as te
from manta._private.common.exposition import parse
from manta._private.common.ids import JobID, NodeID, PlacementGroupID, TaskID
from manta._private.gcs import actor_manager as am
from manta._private.gcs.actor_manager import ActorRecord
from manta._private.gcs.metrics import GcsMetrics, actor_state, task_counts
from manta._private.gcs.node_manager import NodeRecord
from manta._private.gcs.pg_manager import GroupRecord
from manta._private.gcs.task_event_store import TaskEventStore
from manta._private.rpc.latency import LatencyHistogram
from manta._private.rpc.messages import NodeInfo, PlacementGroupSpec
from tests.unit.gcs.test_actor_manager import spec
from tests.unit.gcs.test_task_event_store import define

JOB = JobID.from_int(1)


def store() -> TaskEventStore:
    tasks = TaskEventStore(100)
    a, b, c = (bytes(TaskID.for_normal_task(JOB)) for _ in range(3))
    tasks.add(
        [define(a, 1.0, "f"), define(b, 1.0, "f"), define(c, 1.0, "g"), define(c, 2.0, "g", attempt=1)],
        [[a, 0, te.FINISHED, 3.0], [c, 0, te.FAILED, 3.0], [c, 1, te.RUNNING, 4.0]],
        5,
    )
    return tasks


def test_tasks_are_counted_by_name_state_retry_and_job() -> None:
    assert task_counts(store()) == {
        ("f", "FINISHED", "0", JOB.hex()): 1,
        ("f", "PENDING_NODE_ASSIGNMENT", "0", JOB.hex()): 1,
        ("g", "FAILED", "0", JOB.hex()): 1,
        ("g", "RUNNING", "1", JOB.hex()): 1,
    }


def test_a_scrape_reads_the_kept_counts_not_the_rows() -> None:
    tasks = store()

    def walked() -> None:
        raise AssertionError("a scrape walked every row")

    tasks.rows = walked  # type: ignore[method-assign, assignment]
    text = GcsMetrics(tasks, {}, {}, {}, LatencyHistogram()).exposition()
    running = [s for fam in parse(text) for s in fam.samples if s.labels.get("State") == "RUNNING"]
    assert [(s.labels["Name"], s.value) for s in running] == [("g", 1.0)]


def test_actor_states_are_rays() -> None:
    record = ActorRecord(spec())
    assert actor_state(record) == "PENDING_CREATION"
    record.waiting_args = True
    assert actor_state(record) == "DEPENDENCIES_UNREADY"
    for state in (am.ALIVE, am.RESTARTING, am.DEAD):
        record.state = state
        assert actor_state(record) == state


def test_the_gcs_exports_every_metric_named_for_it() -> None:
    actors = {
        i: ActorRecord(spec(job_id=JOB), state=state) for i, state in enumerate((am.ALIVE, am.ALIVE, am.DEAD))
    }
    group = GroupRecord(
        PlacementGroupSpec(PlacementGroupID.from_random(), "", "ns", JOB, [{"CPU": 1}], "PACK", False)
    )
    info = NodeInfo(NodeID.from_random(), "h", 1, "", "h", "", "", {}, {}, True, 1)
    nodes = {1: NodeRecord(info), 2: NodeRecord(info, alive=False)}
    latency = LatencyHistogram()
    latency.observe("GetNodes", 3.0)
    text = GcsMetrics(store(), actors, {1: group}, nodes, latency).exposition()
    got = {(s.name, frozenset(s.labels.items())): s.value for fam in parse(text) for s in fam.samples}
    exported = {name for name, _labels in got}
    for definition in md.GCS_METRICS.values():
        assert exported & set(md.series_names(definition.name, definition.kind)), definition.name
    job = JOB.hex()
    task = {("Name", "g"), ("IsRetry", "1"), ("JobId", job), ("Source", "gcs"), ("State", "RUNNING")}
    assert got[("ray_tasks", frozenset(task))] == 1
    actor = {("Name", "Counter"), ("JobId", job), ("Source", "gcs")}
    assert got[("ray_actors", frozenset({*actor, ("State", "ALIVE")}))] == 2
    assert got[("ray_actors", frozenset({*actor, ("State", "DEAD")}))] == 1
    assert got[("ray_placement_groups", frozenset({("State", "PENDING")}))] == 1
    assert got[("ray_cluster_active_nodes", frozenset())] == 1
    assert got[("manta_cluster_dead_nodes", frozenset())] == 1
    assert got[("ray_gcs_task_manager_task_events_stored", frozenset())] == 4
    assert got[("ray_gcs_task_manager_task_events_dropped", frozenset({("Type", "STATUS_EVENT")}))] == 5
    method = frozenset({("Method", "GetNodes"), ("Component", "gcs"), ("le", "10.0")})
    assert got[("ray_grpc_server_req_process_time_ms_bucket", method)] == 1
