"""An autoscaling config (``manta start --head --autoscaling-config FILE``), read and
checked (pure): Ray's cluster-config names for what Manta's autoscaler does, and a clear
error for anything else.

    cluster_name: demo
    max_workers: 10               # worker nodes in all, head not counted (default 2,
                                  # as Ray's); a type's max_workers defaults to it
    upscaling_speed: 1.0          # pending launches allowed: max(5, speed x joined nodes)
    idle_timeout_minutes: 5
    provider: {type: local}       # or kubernetes (namespace, ...)
    head_node_type: head
    available_node_types:
      head: {resources: {CPU: 2}, min_workers: 0, max_workers: 0}
      cpu-4:
        resources: {CPU: 4}
        labels: {zone: a}
        min_workers: 0
        max_workers: 5
        node_config: {}           # the provider's (a pod template for kubernetes)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.resources import check_amounts

PROVIDERS = ("local", "kubernetes")
# Ray's default for the cluster's max_workers; a node type's defaults to the cluster's.
DEFAULT_MAX_WORKERS = 2

_TOP_KEYS = {
    "cluster_name",
    "max_workers",
    "upscaling_speed",
    "idle_timeout_minutes",
    "provider",
    "head_node_type",
    "available_node_types",
}
_TYPE_KEYS = {"resources", "labels", "min_workers", "max_workers", "node_config"}
# Ray's keys for machines it sets up itself over SSH: Manta's providers start nodes from a
# command or a pod template instead.
_RAY_ONLY = {
    "auth",
    "docker",
    "file_mounts",
    "cluster_synced_files",
    "file_mounts_sync_continuously",
    "rsync_exclude",
    "rsync_filter",
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
    "head_node",
    "worker_nodes",
    "min_workers",
    "target_utilization_fraction",
}


class AutoscalingConfigError(ValueError):
    """The autoscaling config cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class NodeType:
    name: str
    resources: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)
    min_workers: int = 0
    max_workers: int = 0
    node_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AutoscalingConfig:
    node_types: dict[str, NodeType]
    max_workers: int
    upscaling_speed: float = 1.0
    idle_timeout_s: float = 300.0
    provider: dict[str, Any] = field(default_factory=lambda: {"type": "local"})
    head_node_type: str | None = None
    cluster_name: str = "default"

    def worker_types(self) -> dict[str, NodeType]:
        """The node types the autoscaler may launch (the head's is not one)."""
        return {name: t for name, t in self.node_types.items() if name != self.head_node_type}


def load(path: str) -> AutoscalingConfig:
    """Read a YAML (or JSON) file and check it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise AutoscalingConfigError(f"cannot read the autoscaling config {path}: {e.strerror}") from None
    return parse(_decode(text, path))


def _decode(text: str, path: str) -> Any:
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise AutoscalingConfigError(f"{path} is not valid JSON: {e}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise AutoscalingConfigError(f"{path} is not valid YAML: {e}") from None


def parse(raw: Any) -> AutoscalingConfig:
    if not isinstance(raw, Mapping):
        raise AutoscalingConfigError(
            "an autoscaling config is a mapping of settings (available_node_types, max_workers, ...)"
        )
    _check_keys(raw, _TOP_KEYS, "the autoscaling config")
    types_raw = raw.get("available_node_types")
    if not isinstance(types_raw, Mapping) or not types_raw:
        raise AutoscalingConfigError("available_node_types must name at least one node type")
    head = raw.get("head_node_type")
    if head is not None and head not in types_raw:
        raise AutoscalingConfigError(
            f"head_node_type {head!r} is not one of available_node_types ({', '.join(sorted(map(str, types_raw)))})"
        )
    cluster_max = _count(raw, "max_workers", "the autoscaling config", default=DEFAULT_MAX_WORKERS)
    # A head of no resources is common (nothing runs there); a worker type needs some.
    types = {
        str(name): _node_type(str(name), spec, worker=name != head, cluster_max=cluster_max)
        for name, spec in types_raw.items()
    }
    config = AutoscalingConfig(
        node_types=types,
        max_workers=cluster_max,
        upscaling_speed=_number(raw, "upscaling_speed", 1.0, positive=True),
        idle_timeout_s=60.0 * _number(raw, "idle_timeout_minutes", 5.0, positive=False),
        provider=_provider(raw.get("provider", {"type": "local"})),
        head_node_type=head,
        cluster_name=str(raw.get("cluster_name", "default")),
    )
    if not config.worker_types():
        raise AutoscalingConfigError("available_node_types has no worker node type (only the head's)")
    return config


def _node_type(name: str, spec: Any, worker: bool, cluster_max: int) -> NodeType:
    where = f"node type {name!r}"
    if not isinstance(spec, Mapping):
        raise AutoscalingConfigError(f"{where} must be a mapping (resources, min_workers, max_workers, ...)")
    _check_keys(spec, _TYPE_KEYS, where)
    resources = spec.get("resources", {} if not worker else None)
    if not isinstance(resources, Mapping) or (worker and not any(v for v in resources.values())):
        raise AutoscalingConfigError(
            f"{where} has no resources: say what one node has, e.g. resources: {{CPU: 4}}"
        )
    try:
        check_amounts(resources, f"{where}'s resources")
    except (TypeError, ValueError) as e:
        raise AutoscalingConfigError(str(e)) from None
    labels = spec.get("labels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise AutoscalingConfigError(f"{where}'s labels must map names to strings")
    low = _count(spec, "min_workers", where, default=0)
    high = _count(spec, "max_workers", where, default=cluster_max)  # Ray's default too
    if low > high:
        raise AutoscalingConfigError(f"{where} has min_workers {low} above its max_workers {high}")
    node_config = spec.get("node_config", {})
    if not isinstance(node_config, Mapping):
        raise AutoscalingConfigError(f"{where}'s node_config must be a mapping")
    return NodeType(
        name,
        {str(k): float(v) for k, v in resources.items()},
        {str(k): str(v) for k, v in labels.items()},
        low,
        high,
        dict(node_config),
    )


def _provider(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("type") not in PROVIDERS:
        raise AutoscalingConfigError(f"provider.type must be one of {', '.join(PROVIDERS)}; got {raw!r}")
    return dict(raw)


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, raw)) - allowed)
    if not unknown:
        return
    ray_only = [k for k in unknown if k in _RAY_ONLY]
    if ray_only:
        raise AutoscalingConfigError(
            f"{where}: {', '.join(ray_only)} {'is' if len(ray_only) == 1 else 'are'} Ray's settings for "
            "machines it sets up over SSH, which Manta does not do; its providers start nodes from "
            f"the node type's node_config. Known keys: {', '.join(sorted(allowed))}"
        )
    raise AutoscalingConfigError(
        f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
    )


def _count(raw: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AutoscalingConfigError(
            f"{where}'s {key} must be a whole number of nodes, 0 or more; got {value!r}"
        )
    return value


def _number(raw: Mapping[str, Any], key: str, default: float, positive: bool) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AutoscalingConfigError(f"{key} must be a number; got {value!r}")
    if value < 0 or (positive and value == 0):
        raise AutoscalingConfigError(f"{key} must be {'above' if positive else 'at least'} 0; got {value!r}")
    return float(value)
