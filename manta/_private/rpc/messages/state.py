"""Messages of the state API that nodes answer, and what workers tell them for it (tags 200-209)."""

from __future__ import annotations

from manta._private.rpc.codec import message


@message(200)
class ListWorkers:
    """A node's worker and driver processes, running and recently ended, as rows of
    ``worker_processes.WORKER_ROW`` (a reply of plain lists: a node may hold thousands)."""


@message(201)
class RuntimeEnvReport:
    """A worker set up (or failed to set up) the runtime env ``key`` (a one-way message to
    its node daemon)."""

    key: str
    runtime_env: str  # its JSON
    success: bool
    error: str
    started_ms: int


@message(202)
class ListRuntimeEnvs:
    """A node's runtime envs, as rows of ``node.runtime_envs.ENV_ROW``."""
