"""The body of a worker process, entered in a child forked from the worker template."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

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
    # Manta's own log lines go to a file of their own: stdout and stderr are the user's,
    # and stream to the driver.
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=params["log_path"],
    )
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
    assert worker.executor is not None
    try:
        worker.executor.run_forever()
    finally:
        os._exit(0)
