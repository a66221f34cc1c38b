"""Asking every node: one that fails to answer is left out, the others' answers stand."""

from __future__ import annotations

import asyncio
from typing import Any

from manta._private.api.node_calls import ask_nodes
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta.exceptions import RpcError


def node_state(node_id: NodeID, alive: bool = True) -> m.NodeState:
    info = m.NodeInfo(node_id, "127.0.0.1", 1, "", "h", "", "", {}, {}, False, 1)
    return m.NodeState(info, alive, {}, "", [], [])


class Answering:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def call(self, msg: Any) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def test_a_node_answering_with_an_error_is_left_out() -> None:
    here = NodeID.from_random()
    failing = Answering(RpcError("RemoteError: UnknownMessage"))
    answers = asyncio.run(ask_nodes([node_state(here)], m.ListWorkers(), b"t", Config(), (here, failing)))
    assert answers == []
    ok = Answering([["w", False, True, 7, None, "", 0, 0, 0]])
    [(info, rows)] = asyncio.run(ask_nodes([node_state(here)], m.ListWorkers(), b"t", Config(), (here, ok)))
    assert info.node_id == here and rows[0][3] == 7


def test_dead_nodes_are_not_asked() -> None:
    here = NodeID.from_random()
    never = Answering(AssertionError("a dead node was asked"))
    assert (
        asyncio.run(
            ask_nodes([node_state(here, alive=False)], m.ListWorkers(), b"t", Config(), (here, never))
        )
        == []
    )
