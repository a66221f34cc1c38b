"""Where a state call reads from, chosen by its ``address``: the head's HTTP service
(``http(s)://...``: the only way in from off the cluster, with a user token), the cluster
at a gcs address on this host, or by default the connected driver's cluster, else the
newest cluster running on this host."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from manta._private.api.client_ops import GatherState
from manta._private.api.context import current_worker
from manta._private.api.discovery import join_existing, latest_cluster, session_for
from manta._private.common.aio import new_event_loop
from manta._private.common.config import Config
from manta._private.common.session import read_token
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Dispatcher
from manta.util.state._collect import Gatherer

T = TypeVar("T")


def is_http(address: str | None) -> bool:
    return bool(address) and str(address).startswith(("http://", "https://"))


def gather(address: str | None, work: Callable[[Gatherer], Awaitable[T]], timeout: float) -> T:
    """``work`` run against the cluster at ``address`` (a gcs address, or None)."""
    worker = current_worker()
    if address is None and getattr(worker, "is_remote", False):
        # A remote driver: its session on the head gathers, as this process would on a node.
        return worker.call(GatherState(work, timeout))  # type: ignore[union-attr,no-any-return]
    if address is None and worker is not None:

        async def in_driver() -> T:
            local = (worker.node_id, worker.node_conn)
            return await work(Gatherer(worker.gcs_call, worker.session.token, worker.config, local))

        return worker.io.run(in_driver(), timeout)  # type: ignore[no-any-return]
    config = Config.from_env()
    session_dir = session_for(address, config) if address else latest_cluster(config)
    if session_dir is None:
        raise ConnectionError(
            "No Manta cluster runs on this host: call manta.init() first, pass address= a cluster's "
            "address, or the head's dashboard (http://HOST:PORT) from elsewhere."
        )
    session, _info = join_existing(session_dir)  # raises if it is not running any more
    # The session's own credential: the gcs answers these only to the cluster's (a user
    # token in MANTA_AUTH_TOKEN is for the head's HTTP routes).
    gcs, token = session.gcs_address, read_token(session_dir)

    async def from_outside() -> T:
        conn = await connect(gcs, token, Dispatcher(), kind="cli", max_frame_bytes=config.max_frame_bytes)
        try:
            return await asyncio.wait_for(work(Gatherer(conn.call, token, config)), timeout)
        finally:
            conn.close()

    loop = new_event_loop()
    try:
        return loop.run_until_complete(from_outside())
    finally:
        loop.close()


def http_get(address: str, path: str, query: list[tuple[str, Any]]) -> Any:
    """The ``data.result`` of a state route of the head's HTTP service at ``address``
    (the token: ``MANTA_AUTH_TOKEN``, or the session's when the head runs here)."""
    from manta.job_submission.sdk import SubmissionClient

    client = SubmissionClient(address)
    reply = client._get(path + "?" + urllib.parse.urlencode([(k, str(v)) for k, v in query]))
    return reply["data"]["result"]
