"""The cluster's metrics, gathered on the head: the gcs's and every live node daemon's
(each answers ``GetMetrics`` on its authenticated RPC socket with its own exposition:
no daemon opens a port for metrics), merged into one exposition for ``GET /metrics``,
and sampled every ``metrics_history_interval_s`` into the short history the dashboard
draws its charts from.

One gather runs at a time and its result serves every request of the next second, so
however many scrapers there are, the daemons are asked at most about once a second.
A daemon that does not answer in time is left out of that scrape (and logged). The
connection to each node is kept from one gather to the next, and closed when the node
leaves. Parsing the daemons' texts, rendering the merged one and summarizing it for the
history take prometheus_client's pure-Python code a second or more for a large cluster:
they run on a thread, not on the loop that serves the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client.core import Metric

from manta._private.api.node_calls import connect_node
from manta._private.common import exposition as ex
from manta._private.common.clock import Clock, SystemClock
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.metrics_history import MetricsHistory, node_usage, summarize

logger = logging.getLogger("manta.dashboard")

# A gather younger than this serves a request instead of a new one.
_FRESH_S = 1.0
# How long one daemon may take to answer.
_ASK_TIMEOUT_S = 5.0


class ClusterMetrics:
    def __init__(self, gcs: GcsLink, token: bytes, config: Config, clock: Clock | None = None) -> None:
        self._gcs = gcs
        self._token = token
        self._config = config
        self._clock = clock or SystemClock()
        self._nodes: dict[NodeID, Connection] = {}  # open connections, to live nodes only
        self.history = MetricsHistory(config.metrics_history_s, config.metrics_history_interval_s)
        self._gathering: asyncio.Future[list[Metric]] | None = None
        self.nodes: dict[str, dict[str, float]] = {}  # each node's use at the last sample
        self._gathered_at = -_FRESH_S
        self._log = RateLimitedLog(self._clock.monotonic)

    async def families(self, max_age: float = _FRESH_S) -> list[Metric]:
        """The merged families of every daemon, gathered at most ``max_age`` seconds ago
        (or by the gather under way)."""
        fut = self._gathering
        now = self._clock.monotonic()
        if fut is None or (fut.done() and now - self._gathered_at >= max_age):
            fut = self._gathering = asyncio.ensure_future(self._gather())
            self._gathered_at = now
        return await asyncio.shield(fut)

    async def exposition(self) -> bytes:
        return await asyncio.to_thread(ex.render, await self.families())

    async def _gather(self) -> list[Metric]:
        texts = [self._ask_gcs()]
        try:
            states: list[m.NodeState] = await self._gcs.call(m.GetNodes(), _ASK_TIMEOUT_S)
        except Exception as e:
            self._log.log(logger, f"metrics: cannot list the nodes: {e}")
        else:
            alive = [state.info for state in states if state.alive]
            self._forget_nodes_but({info.node_id for info in alive})
            texts += [self._ask_node(info) for info in alive]
        families, problems = await asyncio.to_thread(_read, await asyncio.gather(*texts))
        for problem in problems:
            self._log.log(logger, f"metrics: {problem}")
        return families

    async def _ask_gcs(self) -> str:
        try:
            return str(await self._gcs.call(m.GetMetrics(), _ASK_TIMEOUT_S))
        except Exception as e:
            self._log.log(logger, f"metrics: the gcs did not answer: {e}")
            return ""

    async def _ask_node(self, info: m.NodeInfo) -> str:
        try:
            conn = self._nodes.get(info.node_id)
            if conn is None or conn.closed:
                conn = await asyncio.wait_for(
                    connect_node(info, self._token, self._config, "dashboard"), _ASK_TIMEOUT_S
                )
                self._nodes[info.node_id] = conn
            return str(await asyncio.wait_for(conn.call(m.GetMetrics()), _ASK_TIMEOUT_S))
        except Exception as e:
            self._forget(info.node_id)
            where = f"{info.host}:{info.port}"
            self._log.log(logger, f"metrics: node {info.node_id.hex()[:8]} at {where} did not answer: {e}")
            return ""

    def _forget_nodes_but(self, alive: set[NodeID]) -> None:
        for node_id in [n for n in self._nodes if n not in alive]:
            self._forget(node_id)

    def _forget(self, node_id: NodeID) -> None:
        conn = self._nodes.pop(node_id, None)
        if conn is not None:
            conn.close()

    async def sample_loop(self) -> None:
        """Add a sample to the history every interval, until cancelled."""
        while True:
            started = self._clock.monotonic()
            try:
                families = await self.families(max_age=0.0)
                self.history.add(await asyncio.to_thread(summarize, families, self._clock.time()))
                self.nodes = await asyncio.to_thread(node_usage, families)
            except Exception as e:  # the gcs restarting, say: the next sample comes anyway
                self._log.log(logger, f"metrics: no history sample: {e}")
            elapsed = self._clock.monotonic() - started
            await asyncio.sleep(max(self.history.interval_s - elapsed, 0.0))

    def close(self) -> None:
        if self._gathering is not None:
            self._gathering.cancel()
        self._forget_nodes_but(set())

    def history_json(self, since: float | None) -> dict[str, Any]:
        return self.history.to_json(since)


def _read(texts: list[str]) -> tuple[list[Metric], list[str]]:
    """The daemons' texts parsed and merged into one family per name (on a thread), and
    what went wrong."""
    parsed, problems = [], []
    for text in texts:
        try:
            parsed.append(ex.parse(text))
        except Exception as e:  # a daemon of another version, say: the rest still count
            problems.append(f"a daemon's exposition cannot be read: {e}")
    families, conflicts = ex.merge(parsed)
    return families, problems + [f"{conflict}; the second is left out" for conflict in conflicts]
