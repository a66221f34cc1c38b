"""When to try launching a node type again after the provider failed to (pure): doubling
waits, so a provider that keeps failing is neither hammered nor a crash loop."""

from __future__ import annotations

FIRST_WAIT_S = 5.0
MAX_WAIT_S = 300.0


class LaunchBackoff:
    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = {}  # type -> (failures in a row, retry at)

    def allowed(self, node_type: str, now: float) -> bool:
        entry = self._failures.get(node_type)
        return entry is None or now >= entry[1]

    def failed(self, node_type: str, now: float) -> float:
        """Count a failure; how long until the next try."""
        count = self._failures.get(node_type, (0, 0.0))[0] + 1
        wait = min(FIRST_WAIT_S * 2 ** min(count - 1, 16), MAX_WAIT_S)  # (2**1024 overflows a float)
        self._failures[node_type] = (count, now + wait)
        return wait

    def succeeded(self, node_type: str) -> None:
        self._failures.pop(node_type, None)
