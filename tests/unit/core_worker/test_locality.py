"""Choosing the node that holds most of a task's argument bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.ids import NodeID, ObjectID
from manta._private.core_worker.locality import preferred_node
from manta._private.rpc.messages import ArgValue

HERE, A, B = (NodeID(bytes([i]) * NodeID.SIZE) for i in (1, 2, 3))


def arg(node: NodeID | None, size: int, inline: bytes | None = None) -> ArgValue:
    return ArgValue(ObjectID.from_random(), inline, node, size)


def test_no_stored_arguments_means_no_preference() -> None:
    assert preferred_node([], HERE) is None
    assert preferred_node([arg(None, 10, b"x" * 10)], HERE) is None


def test_the_node_with_the_most_bytes_wins() -> None:
    assert preferred_node([arg(A, 100), arg(B, 60), arg(B, 50)], HERE) == B
    assert preferred_node([arg(A, 100), arg(HERE, 30)], HERE) == A


def test_this_node_is_none_and_wins_ties() -> None:
    assert preferred_node([arg(HERE, 100), arg(A, 50)], HERE) is None
    assert preferred_node([arg(HERE, 100), arg(A, 100)], HERE) is None


def test_inline_values_do_not_count_even_with_a_node() -> None:
    assert preferred_node([arg(A, 10, b"0123456789"), arg(B, 5)], HERE) == B


@given(st.lists(st.tuples(st.sampled_from([HERE, A, B]), st.integers(0, 10**9)), max_size=8))
def test_the_choice_holds_at_least_as_many_bytes_as_any_other_node(pairs: list[tuple[NodeID, int]]) -> None:
    args = [arg(node, size) for node, size in pairs]
    totals = {node: sum(s for n, s in pairs if n == node) for node, _ in pairs}
    chosen = preferred_node(args, HERE)
    best = HERE if chosen is None else chosen
    if totals:
        assert totals.get(best, 0) == max(totals.values())
