"""Subscriptions by (channel, key), where the empty key means every key."""

from __future__ import annotations

from manta._private.gcs.pubsub import Subscriptions


def test_subscribers_of_a_key_include_wildcard_subscribers() -> None:
    subs = Subscriptions()
    subs.subscribe("one", "actor", b"a1")
    subs.subscribe("all", "actor", b"")
    subs.subscribe("other-channel", "node", b"a1")
    assert subs.subscribers("actor", b"a1") == {"one", "all"}
    assert subs.subscribers("actor", b"a2") == {"all"}
    assert subs.subscribers("node", b"a1") == {"other-channel"}
    assert subs.subscribers("node", b"zz") == set()
    assert subs.subscribers("nothing", b"") == set()


def test_subscribing_twice_is_one_subscription() -> None:
    subs = Subscriptions()
    subs.subscribe("s", "c", b"k")
    subs.subscribe("s", "c", b"k")
    assert subs.subscribers("c", b"k") == {"s"}


def test_drop_removes_every_subscription_of_a_subscriber() -> None:
    subs = Subscriptions()
    subs.subscribe("gone", "c", b"k")
    subs.subscribe("gone", "c", b"")
    subs.subscribe("gone", "d", b"x")
    subs.subscribe("stays", "c", b"k")
    subs.drop("gone")
    assert subs.subscribers("c", b"k") == {"stays"}
    assert subs.subscribers("d", b"x") == set()
    subs.drop("never-subscribed")


def test_returned_sets_are_copies() -> None:
    subs = Subscriptions()
    subs.subscribe("s", "c", b"k")
    subs.subscribers("c", b"k").add("intruder")
    subs.subscribers("c", b"other").add("intruder")
    assert subs.subscribers("c", b"k") == {"s"}
    assert subs.subscribers("c", b"other") == set()


def test_dropping_subscribers_leaves_nothing_behind() -> None:
    subs = Subscriptions()
    for i in range(100):
        subs.subscribe("caller", "actor", bytes([i]))
        subs.subscribe("other", "actor", bytes([i]))
    assert len(subs) == 200
    subs.drop("caller")
    assert len(subs) == 100 and subs.subscribers("actor", b"\x05") == {"other"}
    subs.drop("other")
    assert len(subs) == 0 and subs.subscribers("actor", b"\x05") == set()
