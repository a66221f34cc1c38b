"""The body of a worker process, entered in a child forked from the worker template."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from manta._private.common import log_rotation
from manta._private.common.config import Config
from manta._private.common.ids import WorkerID
from manta._private.common.session import SessionInfo, read_token
from manta._private.core_worker.core_worker import CoreWorker
from manta._private.rpc import tls


def run(worker_id: WorkerID, params: dict[str, Any]) -> None:
    """Connect to the node daemon and execute tasks until told to stop."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    config = Config(**params["config"])
    tls.use(config)
    # Manta's own log lines go to a file of their own. The root logger is left as Python
    # leaves it, as in Ray: what tasks log (warnings and up, unless they or the job's
    # logging_config say otherwise) goes to stderr, which streams to the driver.
    policy = log_rotation.policy_of(config)
    handler = log_rotation.file_handler(params["log_path"], policy)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own = logging.getLogger("manta")
    own.addHandler(handler)
    own.setLevel(config.log_level)
    own.propagate = False
    session = SessionInfo(
        session_dir=params["session_dir"],
        node_id=bytes.fromhex(params["node_id"]),
        node_address=params["node_address"],
        gcs_address=params["gcs_address"],
        arena_path=params["arena_path"],
        host=params["host"],
        token=read_token(params["session_dir"]),
    )
    worker = CoreWorker(is_driver=False, config=config, session=session, worker_id=WorkerID(worker_id))
    worker.connect()
    base = params["log_path"][: -len(".log")]
    log_rotation.watch(worker.io.loop, [(1, base + ".out"), (2, base + ".err")], policy)
    assert worker.executor is not None
    try:
        worker.executor.run_forever()
    finally:
        os._exit(0)
