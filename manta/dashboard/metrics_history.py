"""A short history of a few cluster-wide series, kept in memory on the head for the
dashboard's charts (nobody needs Prometheus or Grafana to see the last minutes).

Pure: ``summarize`` reads one merged scrape of the cluster's metrics into a ``Sample``;
``MetricsHistory`` keeps the samples of the last ``window_s`` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    time: float  # seconds since the epoch
    nodes_alive: int
    cpu_percent: float  # of every host's cores together (0-100)
    cpu_count: int
    mem_used_bytes: float
    mem_total_bytes: float
    object_store_used_bytes: float
    object_store_capacity_bytes: float
    spilled_bytes: float
    tasks: dict[str, float] = field(default_factory=dict)  # by state (ray_tasks)
    actors: dict[str, float] = field(default_factory=dict)  # by state (ray_actors)


def summarize(families: Iterable[Any], now: float) -> Sample:
    """One sample from a scrape's families (prometheus_client ``Metric``s). Host series
    count once per host (``NodeAddress``): several nodes of one test cluster share one."""
    hosts: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    by_state: dict[str, dict[str, float]] = {"ray_tasks": {}, "ray_actors": {}}
    for fam in families:
        for s in fam.samples:
            if s.name in _HOST_SERIES:
                hosts.setdefault(s.labels.get("NodeAddress", ""), {})[s.name] = s.value
            elif s.name in by_state:
                states = by_state[s.name]
                states[s.labels.get("State", "")] = states.get(s.labels.get("State", ""), 0.0) + s.value
            elif s.name in _SUMMED:
                key = s.name if s.name != "ray_object_store_memory" else s.labels.get("Location", "")
                totals[key] = totals.get(key, 0.0) + s.value
    cores = sum(h.get("ray_node_cpu_count", 0.0) for h in hosts.values())
    busy = sum(
        h.get("ray_node_cpu_utilization", 0.0) * h.get("ray_node_cpu_count", 0.0) for h in hosts.values()
    )
    used = totals.get("ray_object_store_used_memory", 0.0)
    return Sample(
        time=now,
        nodes_alive=int(totals.get("ray_cluster_active_nodes", 0.0)),
        cpu_percent=busy / cores if cores else 0.0,
        cpu_count=int(cores),
        mem_used_bytes=sum(h.get("ray_node_mem_used", 0.0) for h in hosts.values()),
        mem_total_bytes=sum(h.get("ray_node_mem_total", 0.0) for h in hosts.values()),
        object_store_used_bytes=used,
        object_store_capacity_bytes=used + totals.get("ray_object_store_available_memory", 0.0),
        spilled_bytes=totals.get("SPILLED", 0.0),
        tasks=by_state["ray_tasks"],
        actors=by_state["ray_actors"],
    )


def node_usage(families: Iterable[Any]) -> dict[str, dict[str, float]]:
    """Each node's latest use, by node id (hex): its host's CPU and memory (nodes that
    share a host show the same), its object store's use and capacity, what it spilled."""
    nodes: dict[str, dict[str, float]] = {}
    for fam in families:
        for s in fam.samples:
            node = s.labels.get("NodeId")
            if not node:
                continue
            field_name = _NODE_FIELDS.get(s.name)
            if (
                field_name is None
                and s.name == "ray_object_store_memory"
                and s.labels.get("Location") == "SPILLED"
            ):
                field_name = "spilled_bytes"
            if field_name is not None:
                nodes.setdefault(node, {})[field_name] = s.value
    for usage in nodes.values():
        usage["object_store_capacity_bytes"] = usage.get("object_store_used_bytes", 0.0) + usage.pop(
            "object_store_available_bytes", 0.0
        )
    return nodes


_NODE_FIELDS = {
    "ray_node_cpu_utilization": "cpu_percent",
    "ray_node_cpu_count": "cpu_count",
    "ray_node_mem_used": "mem_used_bytes",
    "ray_node_mem_total": "mem_total_bytes",
    "ray_object_store_used_memory": "object_store_used_bytes",
    "ray_object_store_available_memory": "object_store_available_bytes",
}
_HOST_SERIES = frozenset(
    {"ray_node_cpu_utilization", "ray_node_cpu_count", "ray_node_mem_used", "ray_node_mem_total"}
)
_SUMMED = frozenset(
    {
        "ray_cluster_active_nodes",
        "ray_object_store_used_memory",
        "ray_object_store_available_memory",
        "ray_object_store_memory",
    }
)


class MetricsHistory:
    def __init__(self, window_s: float, interval_s: float) -> None:
        self.window_s = window_s
        self.interval_s = interval_s
        self._samples: deque[Sample] = deque(maxlen=max(1, math.ceil(window_s / interval_s)))

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    def samples(self, since: float | None = None) -> list[Sample]:
        """The samples kept (oldest first); with ``since``, only those taken after it."""
        if since is None:
            return list(self._samples)
        return [s for s in self._samples if s.time > since]

    def to_json(self, since: float | None = None) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "window_s": self.window_s,
            "samples": [asdict(s) for s in self.samples(since)],
        }
