"""The runtime envs a node's workers set up, for the state API's ``list_runtime_envs``
(pure): each env once per node, by its key, with when it was first set up, whether the
last try worked (and why not), and the workers that run in it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Envs a node remembers at most (the oldest go first): a flood of distinct envs from one
# job must not grow the node without bound.
MAX_ENVS = 1000
# The longest env description and error kept (a report beyond is cut or refused).
MAX_SPEC_CHARS = 64 * 1024
MAX_ERROR_CHARS = 2000
# A listing row: [runtime_env JSON, success, creation ms, error, workers in it].
ENV_ROW = ("runtime_env", "success", "creation_time_ms", "error", "ref_cnt")


@dataclass(slots=True)
class _Env:
    spec: str
    created_ms: int
    success: bool = False
    error: str = ""
    workers: set[bytes] = field(default_factory=set)


class RuntimeEnvRecords:
    def __init__(self) -> None:
        self._envs: dict[str, _Env] = {}

    def report(
        self, worker_id: bytes | None, key: str, spec: str, success: bool, error: str, started_ms: int
    ) -> None:
        """A worker's setup of ``key`` ended (``success``, or failed with ``error``). A
        report whose env is not a JSON object (or too long to keep) is left out: listings
        must not fail on one peer's bad report."""
        if len(spec) > MAX_SPEC_CHARS or not _is_json_object(spec):
            return
        error = error[:MAX_ERROR_CHARS]
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = _Env(spec, started_ms)
            while len(self._envs) > MAX_ENVS:
                del self._envs[next(iter(self._envs))]
        env.success, env.error = success, "" if success else error
        if success and worker_id is not None:
            env.workers.add(worker_id)

    def rows(self, alive: Callable[[bytes], bool]) -> list[list[Any]]:
        """Every env as an ``ENV_ROW``; its workers that ended no longer count."""
        rows = []
        for env in self._envs.values():
            env.workers = {w for w in env.workers if alive(w)}
            rows.append([env.spec, env.success, env.created_ms, env.error, len(env.workers)])
        return rows


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
