"""Who listens to what: subscriptions by (channel, key), with b"" meaning every key."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

_S = TypeVar("_S", bound=Hashable)


class Subscriptions(Generic[_S]):
    def __init__(self) -> None:
        self._subs: dict[tuple[str, bytes], set[_S]] = {}
        # What each subscriber listens to, so dropping it touches only its own entries.
        self._of: dict[_S, set[tuple[str, bytes]]] = {}

    def subscribe(self, subscriber: _S, channel: str, key: bytes) -> None:
        self._subs.setdefault((channel, key), set()).add(subscriber)
        self._of.setdefault(subscriber, set()).add((channel, key))

    def drop(self, subscriber: _S) -> None:
        for topic in self._of.pop(subscriber, ()):
            subscribers = self._subs[topic]
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subs[topic]  # one per actor ever watched would pile up otherwise

    def subscribers(self, channel: str, key: bytes) -> set[_S]:
        return self._subs.get((channel, key), set()) | self._subs.get((channel, b""), set())

    def __len__(self) -> int:
        """How many (subscriber, channel, key) subscriptions there are."""
        return sum(len(topics) for topics in self._of.values())
