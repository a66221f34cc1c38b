"""Between a node daemon and its worker template (the fork server) (tags 100-102, 108 and 110)."""

from __future__ import annotations

from typing import Any

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


@message(110)
class ForkFailed:
    # The fork itself failed (EAGAIN at a process limit, ENOMEM): that worker never starts.
    worker_id: WorkerID
    error: str


@message(102)
class ChildExited:
    pid: int
    exit_code: int | None
    signal: int | None


@message(108)
class TemplateParams:
    # What every worker the template forks starts with (session, node, addresses, config);
    # the node's first frame to a template it started before knowing them.
    params: dict[str, Any]
