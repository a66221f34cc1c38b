"""How the autoscaler starts and stops nodes: the node provider interface.

A provider launches a node of a node type under a *launch id* the autoscaler picks; the
node joins the cluster carrying that id (and its type) as labels, which is how the
autoscaler tells its nodes from the head and from nodes started by hand, and which of
its launches have joined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from manta._private.autoscaler.config import NodeType

LAUNCH_LABEL = "manta.io/launch-id"
TYPE_LABEL = "manta.io/node-type"


class ProviderError(RuntimeError):
    """The provider could not launch or terminate a node (said in ``manta status``)."""


@dataclass(frozen=True, slots=True)
class Launched:
    """A node the provider started and has not terminated."""

    launch_id: str
    node_type: str
    launched_at: float  # wall-clock time


class NodeProvider(Protocol):
    def check_node_config(self, node_type: NodeType) -> None:
        """Raise AutoscalingConfigError for a node_config this provider cannot use."""

    def launch(self, node_type: NodeType, launch_id: str) -> None:
        """Start a node of ``node_type`` that joins with ``launch_labels(...)``; raises
        ProviderError when it cannot."""

    def terminate(self, launch_id: str) -> None:
        """Stop the node (gracefully where it can); a node already gone is no error."""

    def launched(self) -> list[Launched]:
        """The nodes started and not terminated (ones that died on their own are left out)."""

    def shutdown(self) -> None:
        """The autoscaler stops: what the provider's nodes need then (see each provider)."""


def launch_labels(node_type: NodeType, launch_id: str) -> dict[str, str]:
    return {**node_type.labels, TYPE_LABEL: node_type.name, LAUNCH_LABEL: launch_id}


def start_options(node_type: NodeType, launch_id: str) -> list[str]:
    """``manta start``'s options for a node of ``node_type`` (a ``memory`` resource is the
    node's own to detect, or its container's limit)."""
    resources = {k: v for k, v in node_type.resources.items() if k not in ("CPU", "GPU", "memory")}
    labels = ",".join(f"{k}={v}" for k, v in launch_labels(node_type, launch_id).items())
    return [
        "--num-cpus",
        f"{node_type.resources.get('CPU', 0.0):g}",
        "--num-gpus",
        f"{node_type.resources.get('GPU', 0.0):g}",
        "--resources",
        json.dumps(resources),
        "--labels",
        labels,
    ]
