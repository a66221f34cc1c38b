"""A real, throwaway redis-server for tests: loopback only, no persistence, its own temp dir.

``with redis_server() as url:`` starts one and yields ``redis://127.0.0.1:PORT``; leaving the
block stops it by its pid. Where ``redis-server`` is not installed the test is skipped
(``.ci/run`` installs it, so CI always runs these tests).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A loopback port nothing listens on right now (another process may take it later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start(exe: str, directory: Path, timeout: float) -> tuple[subprocess.Popen[bytes], int] | None:
    """A server that answers PING, or None if it exited first (its port was taken between
    ``free_port`` and its bind)."""
    port = free_port()
    with open(directory / "redis.log", "ab") as log:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--daemonize", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not _answers_ping(port):
        if proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            _stop(proc)
            log_tail = (directory / "redis.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"redis-server on port {port} never answered PING:\n{log_tail}")
        time.sleep(0.02)
    return proc, port


@contextmanager
def redis_server(timeout: float = 20.0) -> Iterator[str]:
    """A running redis-server's URL; skips the test if there is no ``redis-server``."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="manta-redis-") as tmp:
        for _ in range(3):
            started = _start(exe, Path(tmp), timeout)
            if started is not None:
                break
        else:
            log_tail = (Path(tmp) / "redis.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"redis-server exited at start three times:\n{log_tail}")
        proc, port = started
        try:
            yield f"redis://127.0.0.1:{port}"
        finally:
            _stop(proc)
