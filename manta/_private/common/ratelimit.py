"""Log lines a peer can cause, bounded: a flood of refusals must not fill the disk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimitedLog:
    """At most ``per_window`` lines per ``window_s``; the rest are counted and reported in
    one line when the next window opens."""

    clock: Callable[[], float]
    per_window: int = 20
    window_s: float = 60.0
    _window_start: float = field(default=float("-inf"), init=False)
    _in_window: int = field(default=0, init=False)
    _suppressed: int = field(default=0, init=False)

    def lines(self, line: str) -> list[str]:
        """The lines to write now for this event (none when over the limit)."""
        now = self.clock()
        out = []
        if now - self._window_start >= self.window_s:
            if self._suppressed:
                out.append(f"{self._suppressed} similar lines suppressed in the last {self.window_s:.0f} s")
            self._window_start, self._in_window, self._suppressed = now, 0, 0
        if self._in_window < self.per_window:
            self._in_window += 1
            out.append(line)
        else:
            self._suppressed += 1
        return out

    def log(self, logger: logging.Logger, line: str) -> None:
        for text in self.lines(line):
            logger.warning("%s", text)
