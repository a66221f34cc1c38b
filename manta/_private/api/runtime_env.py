"""The runtime env a submission carries: its own (resolved for the cluster once per
process) merged over the one its job or parent task gave."""

from __future__ import annotations

import json
from typing import Any

from manta._private.common.runtime_env import PACKAGE_KV_NAMESPACE
from manta._private.core_worker.core_worker import CoreWorker
from manta._private.rpc import messages as m
from manta._private.runtime_env import resolve as resolving

_GCS_PREFIX = "gcs://"


def resolve(worker: CoreWorker, env: dict[str, Any] | None) -> dict[str, Any] | None:
    """``env`` with local directories uploaded into the cluster (cached: a directory is
    packed once per process, so later edits to it are not seen by this driver's tasks)."""
    if not env:
        return env
    key = json.dumps(env, sort_keys=True, default=str)
    cached = worker.resolved_runtime_envs.get(key)
    if cached is None:

        def exists(uri: str) -> bool:
            key = uri[len(_GCS_PREFIX) :].encode()  # listed, not read: packages are large
            return key in worker.call_gcs(m.KvKeys(PACKAGE_KV_NAMESPACE, key))

        def upload(uri: str, data: bytes) -> None:
            worker.kv_put(PACKAGE_KV_NAMESPACE, uri[len(_GCS_PREFIX) :].encode(), data)

        cached = resolving.resolve(env, exists, upload)
        worker.resolved_runtime_envs[key] = cached
    return cached


def for_submission(worker: CoreWorker, own: dict[str, Any] | None) -> dict[str, Any] | None:
    """The env a submission carries. On the submit path: the result for the same two env
    objects (a function's options, its job's env) is reused, not worked out per task."""
    if not own:
        return worker.job_runtime_env
    inherited = worker.job_runtime_env
    last = worker.submission_envs.get(id(own))
    if last is not None and last[0] is own and last[1] is inherited:
        return last[2]
    merged = resolving.merge(inherited, resolve(worker, own))
    # The objects themselves are kept, so their ids are not reused while cached.
    worker.submission_envs[id(own)] = (own, inherited, merged)
    return merged
