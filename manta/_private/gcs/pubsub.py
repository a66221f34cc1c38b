"""Who listens to what: subscriptions by (channel, key), with b"" meaning every key."""

from __future__ import annotations

from collections.abc import Hashable


class Subscriptions:
    def __init__(self) -> None:
        self._subs: dict[tuple[str, bytes], set[Hashable]] = {}

    def subscribe(self, subscriber: Hashable, channel: str, key: bytes) -> None:
        self._subs.setdefault((channel, key), set()).add(subscriber)

    def drop(self, subscriber: Hashable) -> None:
        for subscribers in self._subs.values():
            subscribers.discard(subscriber)

    def subscribers(self, channel: str, key: bytes) -> set[Hashable]:
        return self._subs.get((channel, key), set()) | self._subs.get((channel, b""), set())
