"""Where a task's arguments are: the node to ask for its lease first (Ray's locality-aware
leasing), so large arguments are read where they lie instead of copied across nodes."""

from __future__ import annotations

from collections.abc import Iterable

from manta._private.common.ids import NodeID
from manta._private.rpc.messages import ArgValue


def preferred_node(args: Iterable[ArgValue], local: NodeID) -> NodeID | None:
    """The node whose store holds the most bytes of ``args``, or None when that is this
    node or no argument is in a store (inline values travel with the task anyway). Ties
    go to this node, then to the lowest id, so the choice is stable."""
    by_node: dict[NodeID, int] = {}
    for arg in args:
        if arg.inline is None and arg.node_id is not None:
            by_node[arg.node_id] = by_node.get(arg.node_id, 0) + arg.size
    if not by_node:
        return None
    best = max(by_node, key=lambda node: (by_node[node], node == local, -int.from_bytes(bytes(node), "big")))
    return None if best == local else best
