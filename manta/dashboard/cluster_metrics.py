"""The cluster's metrics, gathered on the head: the gcs's and every live node daemon's
(each answers ``GetMetrics`` on its authenticated RPC socket with its own exposition:
no daemon opens a port for metrics), merged into one exposition for ``GET /metrics``,
and sampled every ``metrics_history_interval_s`` into the short history the dashboard
draws its charts from.

One gather runs at a time and its result serves every request of the next second, so
however many scrapers there are, the daemons are asked at most about once a second.
A daemon that does not answer in time is left out of that scrape (and logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.core import Metric

from manta._private.common import exposition as ex
from manta._private.common.config import Config
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.rpc import messages as m
from manta._private.rpc.transport import ConnectionPool, Dispatcher
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.metrics_history import MetricsHistory, summarize

logger = logging.getLogger("manta.dashboard")

# A gather younger than this serves a request instead of a new one.
_FRESH_S = 1.0
# How long one daemon may take to answer.
_ASK_TIMEOUT_S = 5.0


def node_address(info: m.NodeInfo) -> str:
    """Where to reach a node daemon from the head: its Unix socket when it is on this
    host, else its TCP address."""
    return "unix:" + info.unix if info.unix and os.path.exists(info.unix) else f"{info.host}:{info.port}"


class ClusterMetrics:
    def __init__(
        self, gcs: GcsLink, token: bytes, config: Config, clock: Callable[[], float] = time.time
    ) -> None:
        self._gcs = gcs
        self._clock = clock
        self._nodes = ConnectionPool(
            token, Dispatcher(), kind="dashboard", max_frame_bytes=config.max_frame_bytes
        )
        self.history = MetricsHistory(config.metrics_history_s, config.metrics_history_interval_s)
        self._gathering: asyncio.Future[list[Metric]] | None = None
        self._gathered_at = -_FRESH_S
        self._log = RateLimitedLog(time.monotonic)

    async def families(self, max_age: float = _FRESH_S) -> list[Metric]:
        """The merged families of every daemon, gathered at most ``max_age`` seconds ago
        (or by the gather under way)."""
        fut = self._gathering
        if fut is None or (fut.done() and time.monotonic() - self._gathered_at >= max_age):
            fut = self._gathering = asyncio.ensure_future(self._gather())
            self._gathered_at = time.monotonic()
        return await asyncio.shield(fut)

    async def exposition(self) -> bytes:
        return ex.render(await self.families())

    async def _gather(self) -> list[Metric]:
        texts = [self._ask_gcs()]
        try:
            states: list[m.NodeState] = await self._gcs.call(m.GetNodes(), _ASK_TIMEOUT_S)
            texts += [self._ask_node(state.info) for state in states if state.alive]
        except Exception as e:
            self._log.log(logger, f"metrics: cannot list the nodes: {e}")
        parsed = []
        for text in await asyncio.gather(*texts):
            try:
                parsed.append(ex.parse(text))
            except Exception as e:  # a daemon of another version, say: the rest still count
                self._log.log(logger, f"metrics: a daemon's exposition cannot be read: {e}")
        families, conflicts = ex.merge(parsed)
        for conflict in conflicts:
            self._log.log(logger, f"metrics: {conflict}; the second is left out")
        return families

    async def _ask_gcs(self) -> str:
        try:
            return str(await self._gcs.call(m.GetMetrics(), _ASK_TIMEOUT_S))
        except Exception as e:
            self._log.log(logger, f"metrics: the gcs did not answer: {e}")
            return ""

    async def _ask_node(self, info: m.NodeInfo) -> str:
        address = node_address(info)
        try:
            conn = await asyncio.wait_for(self._nodes.get(address), _ASK_TIMEOUT_S)
            return str(await asyncio.wait_for(conn.call(m.GetMetrics()), _ASK_TIMEOUT_S))
        except Exception as e:
            self._nodes.drop(address)
            self._log.log(logger, f"metrics: node {info.node_id.hex()[:8]} at {address} did not answer: {e}")
            return ""

    async def sample_loop(self) -> None:
        """Add a sample to the history every interval, until cancelled."""
        while True:
            started = time.monotonic()
            try:
                self.history.add(summarize(await self.families(max_age=0.0), self._clock()))
            except Exception as e:  # the gcs restarting, say: the next sample comes anyway
                self._log.log(logger, f"metrics: no history sample: {e}")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(self.history.interval_s - elapsed, 0.0))

    def close(self) -> None:
        if self._gathering is not None:
            self._gathering.cancel()
        self._nodes.close()

    def history_json(self, since: float | None) -> dict[str, Any]:
        return self.history.to_json(since)
