"""A remote driver's count of what it holds and what its session holds for it."""

from __future__ import annotations

from manta._private.api.client_holds import Holds

REF = ("r", b"\x01" * 28)
ACTOR = ("a", b"\x02" * 16)


def test_what_the_session_sent_is_released_once_with_its_count_when_the_last_copy_goes() -> None:
    holds = Holds()
    for _ in range(2):  # sent twice (two answers named it): two copies here, two held there
        holds.received(REF)
        holds.add(REF)
    holds.drop(REF)
    assert holds.take_ops() == []  # a copy is left
    holds.drop(REF)
    assert holds.take_ops() == [["r", REF[1], 2]]
    assert holds.take_ops() == []


def test_a_copy_made_here_with_nothing_held_asks_the_session_to_hold_it() -> None:
    holds = Holds()
    holds.add(REF, owner="the owner")
    holds.add(ACTOR)
    assert holds.take_ops() == [["hr", REF[1], "the owner"], ["ha", ACTOR[1], None]]
    holds.drop(ACTOR)
    holds.drop(REF)
    assert holds.take_ops() == [["a", ACTOR[1], 1], ["r", REF[1], 1]]


def test_drops_are_only_queued_until_the_next_call_takes_the_operations() -> None:
    holds = Holds()
    holds.received(REF)
    holds.add(REF)
    holds.drop(REF)  # from a finalizer: takes no lock, counts nothing yet
    holds.received(REF)  # the session sent it again meanwhile
    holds.add(REF)
    # The drop counts now: one copy is left, so nothing is released yet.
    assert holds.take_ops() == []
    holds.drop(REF)
    assert holds.take_ops() == [["r", REF[1], 2]]


def test_a_dropped_generator_is_given_up_in_order_with_the_rest() -> None:
    holds = Holds()
    holds.received(REF)
    holds.add(REF)
    holds.drop(REF)
    holds.stop_reading(b"\x03" * 24)
    assert holds.take_ops() == [["r", REF[1], 1], ["g", b"\x03" * 24, 0]]
