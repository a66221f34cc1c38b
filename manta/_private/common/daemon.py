"""What every daemon's ``main`` shares: logging, the ready pipe, the lifeline, signals."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def report_ready(fd: int | None, info: dict[str, Any]) -> None:
    """Tell the launcher we are up (one JSON line on the ready pipe), then close it."""
    if fd is None:
        return
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(info) + "\n")


def watch_lifeline(loop: asyncio.AbstractEventLoop, fd: int | None, on_lost: Callable[[], None]) -> None:
    """``fd`` is the read end of a pipe whose writer is the process we live for. When
    every writer is gone (the launcher exited, even by SIGKILL) the pipe reads EOF."""
    if fd is None:
        return

    def readable() -> None:
        try:
            data = os.read(fd, 1)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            on_lost()

    loop.add_reader(fd, readable)


def on_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop)
