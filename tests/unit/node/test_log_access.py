"""The node daemon's log handlers: listing, refusals as statuses, tails and follow reads,
all off the daemon's event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from manta._private.common import log_files
from manta._private.common.ids import NodeID
from manta._private.common.session import TASK_MARKER
from manta._private.node.log_access import MAX_READ_BYTES, LogAccess
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Dispatcher

NODE = NodeID.from_random()


def read(access: LogAccess, *args: Any) -> m.LogFileChunk:
    return asyncio.run(access.read_file(None, m.ReadLogFile(*args)))


def listing(access: LogAccess, glob: str) -> m.LogFileListing:
    return asyncio.run(access.list_files(None, m.ListLogFiles(glob)))


@pytest.fixture
def access(tmp_path: Path) -> LogAccess:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "node.err").write_text("".join(f"line {i}\n" for i in range(5)))
    (logs / "worker-aaaaaaaaaaaa.out").write_text(f"{TASK_MARKER}f\nhello\n")
    (logs / "audit.jsonl").write_text("{}\n")
    (tmp_path / "token").write_text("secret")
    return LogAccess(NODE, str(logs), lambda: [("aaaaaaaaaaaa" + "0" * 44, 4242)])


def test_both_messages_are_registered(access: LogAccess) -> None:
    dispatcher = Dispatcher()
    access.register(dispatcher)
    # The node daemon's server admits only the cluster's credential; so do these.
    assert dispatcher.handler_for(m.ListLogFiles)[1] == "cluster"  # type: ignore[index]
    assert dispatcher.handler_for(m.ReadLogFile)[1] == "cluster"  # type: ignore[index]


def test_listing_names_files_and_workers_but_not_the_audit_log(access: LogAccess) -> None:
    found = listing(access, "*")
    assert found.node_id == NODE
    assert [row[0] for row in found.files] == ["node.err", "worker-aaaaaaaaaaaa.out"]
    assert found.workers == [["aaaaaaaaaaaa" + "0" * 44, 4242]]
    assert [row[0] for row in listing(access, "worker-*").files] == ["worker-aaaaaaaaaaaa.out"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("../token", 400),
        ("/etc/passwd", 400),
        ("%2e%2e%2ftoken", 400),
        ("audit.jsonl", 403),
        ("gone.out", 404),
    ],
)
def test_refusals_are_answered_with_a_status_not_an_exception(
    access: LogAccess, name: str, status: int
) -> None:
    chunk = read(access, name, 10, 0, 0, 1000)
    assert (chunk.status, chunk.data) == (status, b"") and chunk.error


def test_a_tail_then_a_follow_read(access: LogAccess, tmp_path: Path) -> None:
    chunk = read(access, "node.err", 2, 0, 0, 1000)
    assert (chunk.status, chunk.data, chunk.truncated) == (0, b"line 3\nline 4\n", True)
    with open(tmp_path / "logs" / "node.err", "a") as f:
        f.write("line 5\n")
    more = read(access, "node.err", -1, chunk.inode, chunk.offset, 1000)
    assert more.data == b"line 5\n" and more.offset == chunk.offset + 7
    whole = read(access, "node.err", -1, 0, 0, 1000)
    assert whole.data.count(b"\n") == 6 and not whole.truncated


def test_a_read_is_capped(access: LogAccess) -> None:
    chunk = read(access, "node.err", -1, 0, 0, 4)
    assert chunk.data == b"line" and chunk.offset == 4
    huge = read(access, "node.err", -1, 0, 0, 1 << 40)
    assert 0 < len(huge.data) <= MAX_READ_BYTES


def test_the_file_system_is_read_off_the_event_loop(
    access: LogAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    for name in ("tail", "read_on", "list_files"):
        real = getattr(log_files, name)

        def spy(*args: Any, _real: Any = real) -> Any:
            threads.append(threading.current_thread().name)
            return _real(*args)

        monkeypatch.setattr(log_files, name, spy)
    assert read(access, "node.err", 2, 0, 0, 1000).data == b"line 3\nline 4\n"
    assert read(access, "node.err", -1, 0, 0, 1000).data.count(b"\n") == 5
    assert listing(access, "*").files
    assert len(threads) == 3 and threading.main_thread().name not in threads


def test_a_hard_link_to_the_audit_log_or_its_name_in_capitals_is_refused(
    access: LogAccess, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    os.link(logs / "audit.jsonl", logs / "innocent.log")
    for name in ("innocent.log", "AUDIT.JSONL", "Audit.Jsonl.1"):
        chunk = read(access, name, 10, 0, 0, 1000)
        assert (chunk.status, chunk.data) == (403, b"") and "manta audit" in chunk.error
    assert read(access, "innocent.log", -1, 0, 0, 1000).status == 403
    assert "innocent.log" not in [row[0] for row in listing(access, "*").files]
