"""Between a node daemon and its worker template (the fork server) (tags 100-119)."""

from __future__ import annotations

from manta._private.common.ids import WorkerID
from manta._private.rpc.codec import message


@message(100)
class ForkWorker:
    worker_id: WorkerID
    env: dict[str, str]
    stdout_path: str
    stderr_path: str


@message(101)
class Forked:
    worker_id: WorkerID
    pid: int


@message(102)
class ChildExited:
    pid: int
    exit_code: int | None
    signal: int | None
