"""Every metric Manta's daemons export, in one table, and the rules metric names follow.

Names and label keys are Ray's where Ray exports the same thing (``ray_tasks`` by
``State``, ``ray_node_mem_used``, ...), so Ray's dashboards and alerts read Manta's
metrics; what Ray has no metric for is named ``manta_*``. User metrics
(``manta.util.metrics``) are exported as ``ray_<name>``, as Ray does: a user name that
would land on one of these is refused when it is defined.

Pure data, no prometheus_client: the worker side imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
KINDS = (COUNTER, GAUGE, HISTOGRAM)

# Prometheus' own rules for names and label names (its client enforces the same).
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Prefix of user metrics in the exposition, as Ray's (``Counter("hits")`` -> ``ray_hits_total``).
USER_PREFIX = "ray_"
# Labels every node daemon puts on its series; user metrics also get the reporting process.
NODE_LABELS = ("NodeId", "NodeAddress")
WORKER_LABEL = "WorkerId"
RESERVED_LABELS = frozenset({*NODE_LABELS, WORKER_LABEL, "le", "quantile"})

# Ray's buckets for request latencies, in milliseconds.
LATENCY_BUCKETS_MS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()


_GCS = (
    MetricDef(
        "ray_tasks",
        GAUGE,
        "Task attempts the gcs's task-event store holds, by state (the oldest finished ones leave "
        "it first, so FINISHED and FAILED count recent attempts).",
        ("Name", "State", "IsRetry", "JobId", "Source"),
    ),
    MetricDef("ray_actors", GAUGE, "Actors by state.", ("Name", "State", "JobId", "Source")),
    MetricDef("ray_placement_groups", GAUGE, "Placement groups by state.", ("State",)),
    MetricDef("ray_cluster_active_nodes", GAUGE, "Nodes alive in the cluster."),
    MetricDef("manta_cluster_dead_nodes", GAUGE, "Nodes the gcs has declared dead."),
    MetricDef(
        "ray_gcs_task_manager_task_events_stored", GAUGE, "Task attempts in the gcs's task-event store."
    ),
    MetricDef(
        "ray_gcs_task_manager_task_events_dropped",
        GAUGE,
        "Task events lost before they reached the store (a full buffer in the reporting process).",
        ("Type",),
    ),
)

_NODE = (
    MetricDef(
        "ray_node_cpu_utilization", GAUGE, "CPU use of the node's host, in percent (0-100).", NODE_LABELS
    ),
    MetricDef("ray_node_cpu_count", GAUGE, "CPU cores of the node's host.", NODE_LABELS),
    MetricDef("ray_node_mem_used", GAUGE, "Memory in use on the node's host, in bytes.", NODE_LABELS),
    MetricDef("ray_node_mem_available", GAUGE, "Memory available on the node's host, in bytes.", NODE_LABELS),
    MetricDef("ray_node_mem_total", GAUGE, "Memory of the node's host, in bytes.", NODE_LABELS),
    MetricDef(
        "ray_node_disk_usage",
        GAUGE,
        "Bytes used on the disk holding the node's session directory.",
        NODE_LABELS,
    ),
    MetricDef(
        "ray_node_disk_free",
        GAUGE,
        "Bytes free on the disk holding the node's session directory.",
        NODE_LABELS,
    ),
    MetricDef(
        "ray_object_store_memory",
        GAUGE,
        "Object store bytes by location: MMAP_SHM (the shared-memory arena) or SPILLED (on disk).",
        (*NODE_LABELS, "Location", "ObjectState"),
    ),
    MetricDef(
        "ray_object_store_used_memory", GAUGE, "Bytes allocated in the node's object store.", NODE_LABELS
    ),
    MetricDef(
        "ray_object_store_available_memory", GAUGE, "Bytes free in the node's object store.", NODE_LABELS
    ),
    MetricDef(
        "ray_object_store_num_local_objects",
        GAUGE,
        "Objects the node's store knows, in memory or spilled.",
        NODE_LABELS,
    ),
    MetricDef(
        "ray_spill_manager_request_total",
        GAUGE,
        "Objects spilled to disk (Type=Spilled) and restored from it (Type=Restored) since the node started.",
        (*NODE_LABELS, "Type"),
    ),
    MetricDef(
        "manta_object_store_spilled_bytes",
        COUNTER,
        "Bytes spilled to disk since the node started.",
        NODE_LABELS,
    ),
    MetricDef(
        "manta_object_store_restored_bytes",
        COUNTER,
        "Bytes restored from disk since the node started.",
        NODE_LABELS,
    ),
    MetricDef(
        "ray_resources",
        GAUGE,
        "Logical resources of the node, USED or AVAILABLE.",
        (*NODE_LABELS, "Name", "State"),
    ),
    MetricDef(
        "ray_scheduler_tasks",
        GAUGE,
        "Lease requests at the node: Waiting (queued here) or Executing (granted, running).",
        (*NODE_LABELS, "State"),
    ),
    MetricDef(
        "ray_scheduler_unscheduleable_tasks",
        GAUGE,
        "Queued lease requests by why they wait: Infeasible (no node could ever run them), "
        "WaitingForResources or WaitingForWorkers.",
        (*NODE_LABELS, "Reason"),
    ),
    MetricDef(
        "ray_internal_num_processes_started",
        GAUGE,
        "Worker processes the node has started.",
        NODE_LABELS,
    ),
    MetricDef("manta_workers", GAUGE, "Worker processes of the node by state.", (*NODE_LABELS, "State")),
    MetricDef(
        "ray_memory_manager_worker_eviction",
        COUNTER,
        "Workers the node's memory monitor killed to keep the node out of memory.",
        NODE_LABELS,
    ),
    MetricDef(
        "manta_metrics_dropped_samples",
        COUNTER,
        "User metric samples the node refused (malformed, a name defined twice with different kinds "
        "or tag keys, or over the node's series limit).",
        NODE_LABELS,
    ),
)

# Both services time the requests they serve (``rpc/latency.py``); a node's carry its labels.
RPC_LATENCY = MetricDef(
    "ray_grpc_server_req_process_time_ms",
    HISTOGRAM,
    "Time a daemon took to handle a request, by message type, in milliseconds.",
    ("Method", "Component"),
)

GCS_METRICS = {d.name: d for d in (*_GCS, RPC_LATENCY)}
NODE_METRICS = {d.name: d for d in (*_NODE, RPC_LATENCY)}

_SUFFIXES = {COUNTER: ("_total",), GAUGE: ("",), HISTOGRAM: ("_bucket", "_sum", "_count")}


def series_names(name: str, kind: str) -> tuple[str, ...]:
    """The sample names of a metric in the text format (a counter's family name never
    ends in ``_total``: its samples do)."""
    return tuple(name + suffix for suffix in _SUFFIXES[kind])


# What a Prometheus query can name among the system metrics.
SYSTEM_SERIES = frozenset(s for d in (*_GCS, *_NODE, RPC_LATENCY) for s in series_names(d.name, d.kind))
