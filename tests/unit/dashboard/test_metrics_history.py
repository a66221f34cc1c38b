"""The head's short metrics history: one sample from a merged scrape, and a bounded ring."""

from __future__ import annotations

from manta._private.common import exposition as ex
from manta._private.common import metric_defs as md
from manta.dashboard.metrics_history import MetricsHistory, Sample, node_usage, summarize

D, G = md.NODE_METRICS, md.GCS_METRICS


def node(node_id: str, host: str, cpu: float, used: float) -> list:
    labels = (node_id, host)
    text = ex.render(
        [
            ex.family(D["ray_node_cpu_utilization"], [((), cpu)], labels),
            ex.family(D["ray_node_cpu_count"], [((), 4)], labels),
            ex.family(D["ray_node_mem_used"], [((), 1000)], labels),
            ex.family(D["ray_node_mem_total"], [((), 8000)], labels),
            ex.family(D["ray_object_store_used_memory"], [((), used)], labels),
            ex.family(D["ray_object_store_available_memory"], [((), 100 - used)], labels),
            ex.family(D["ray_object_store_memory"], [(("MMAP_SHM", ""), used), (("SPILLED", ""), 5)], labels),
        ]
    )
    return ex.parse(text.decode())


def gcs() -> list:
    return ex.parse(
        ex.render(
            [
                ex.family(
                    G["ray_tasks"],
                    [
                        (("f", "RUNNING", "0", "01000000", "gcs"), 2),
                        (("g", "RUNNING", "1", "01000000", "gcs"), 1),
                        (("f", "FINISHED", "0", "01000000", "gcs"), 7),
                    ],
                ),
                ex.family(G["ray_actors"], [(("A", "ALIVE", "01000000", "gcs"), 3)]),
                ex.family(G["ray_cluster_active_nodes"], [((), 3)]),
            ]
        ).decode()
    )


def test_a_sample_sums_the_cluster_and_counts_each_host_once() -> None:
    # Two nodes of one test cluster on one host (their host series are the same), one elsewhere.
    families, _ = ex.merge([gcs(), node("a", "h1", 50, 10), node("b", "h1", 50, 20), node("c", "h2", 0, 30)])
    sample = summarize(families, now=123.0)
    assert sample == Sample(
        time=123.0,
        nodes_alive=3,
        cpu_percent=25.0,  # 4 busy cores at 50% on h1 and 4 idle ones on h2
        cpu_count=8,
        mem_used_bytes=2000,
        mem_total_bytes=16000,
        object_store_used_bytes=60,
        object_store_capacity_bytes=300,
        spilled_bytes=15,
        tasks={"RUNNING": 3, "FINISHED": 7},
        actors={"ALIVE": 3},
    )


def test_an_empty_scrape_is_a_sample_of_zeros() -> None:
    sample = summarize([], now=1.0)
    assert sample.cpu_percent == 0.0 and sample.tasks == {} and sample.nodes_alive == 0


def test_the_history_keeps_its_window_and_answers_since() -> None:
    history = MetricsHistory(window_s=30, interval_s=10)
    for t in range(5):
        history.add(summarize([], now=float(t)))
    assert [s.time for s in history.samples()] == [2.0, 3.0, 4.0]  # 30 s at 10 s: three samples
    body = history.to_json(since=2.0)
    assert body["interval_s"] == 10 and body["window_s"] == 30
    assert [s["time"] for s in body["samples"]] == [3.0, 4.0]
    assert set(body["samples"][0]) == {
        "time",
        "nodes_alive",
        "cpu_percent",
        "cpu_count",
        "mem_used_bytes",
        "mem_total_bytes",
        "object_store_used_bytes",
        "object_store_capacity_bytes",
        "spilled_bytes",
        "tasks",
        "actors",
    }


def test_each_nodes_use_is_its_own_and_its_hosts() -> None:
    families, _ = ex.merge([gcs(), node("a", "h1", 50, 10), node("c", "h2", 0, 30)])
    usage = node_usage(families)
    assert usage == {
        "a": {
            "cpu_percent": 50,
            "cpu_count": 4,
            "mem_used_bytes": 1000,
            "mem_total_bytes": 8000,
            "object_store_used_bytes": 10,
            "object_store_capacity_bytes": 100,
            "spilled_bytes": 5,
        },
        "c": {
            "cpu_percent": 0,
            "cpu_count": 4,
            "mem_used_bytes": 1000,
            "mem_total_bytes": 8000,
            "object_store_used_bytes": 30,
            "object_store_capacity_bytes": 100,
            "spilled_bytes": 5,
        },
    }
    assert node_usage(gcs()) == {}  # the gcs's series name no node
