"""What every daemon's ``main`` shares: logging, the ready pipe, the lifeline, signals."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from manta._private.common import log_rotation
from manta._private.common.aio import new_event_loop
from manta._private.common.config import Config
from manta._private.common.fd_limit import raise_open_file_limit


def argument_parser(prog: str) -> argparse.ArgumentParser:
    """The arguments every daemon takes; callers add their own."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="{}", help="the driver's Config, as JSON")
    parser.add_argument("--ready-fd", type=int, help="pipe to report readiness on")
    parser.add_argument("--lifeline-fd", type=int, help="pipe whose EOF means: stop")
    return parser


def start(args: argparse.Namespace) -> tuple[Config, asyncio.AbstractEventLoop]:
    """Parse the config, set up logging (rotated) and the event loop."""
    config = Config(**json.loads(args.config))
    raise_open_file_limit()
    # What the daemon imported lives as long as it does: kept out of every later
    # collection, so a full one walks only what the daemon made since (gc docs' advice).
    gc.freeze()
    setup_logging(config.log_level)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    # Its stdout and stderr (where its log lines go) are capped like workers' files.
    log_rotation.watch(loop, log_rotation.stdio_targets(), log_rotation.policy_of(config))
    return config, loop


_T = TypeVar("_T")


def or_exit(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``; a ValueError (bad settings) ends the process with one clear line."""
    try:
        return fn(*args)
    except ValueError as e:
        logging.getLogger("manta").error("cannot start: %s", e)
        sys.exit(1)


def run_startup(loop: asyncio.AbstractEventLoop, startup: Coroutine[Any, Any, _T], what: str) -> _T:
    """Run the daemon's startup; an expected failure (a port taken, a gcs that cannot be
    reached or refuses us) ends the process with one clear line in its log, which the
    launcher shows, instead of a traceback."""
    from manta.exceptions import AuthenticationError, RpcError, VersionMismatchError

    try:
        return loop.run_until_complete(startup)
    except (OSError, RpcError, AuthenticationError, VersionMismatchError) as e:
        logging.getLogger("manta").error("%s failed: %s", what, e)
        sys.exit(1)


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
