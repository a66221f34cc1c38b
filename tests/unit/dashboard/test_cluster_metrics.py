"""The head's gathering of daemon metrics, with a fake gcs, a fake clock and a real RPC
server as a node: one gather serves concurrent scrapes until the clock says it is stale;
a daemon whose answer is unreadable or missing is left out, not fatal; a node is reached
by its Unix socket or, failing that, TCP, over one connection kept until it leaves."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from manta._private.common import exposition as ex
from manta._private.common import metric_defs as md
from manta._private.common.clock import FakeClock
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta._private.rpc.auth import cluster_only
from manta._private.rpc.endpoints import RpcServer
from manta._private.rpc.transport import Dispatcher
from manta.dashboard.cluster_metrics import ClusterMetrics

TOKEN = b"t" * 64
STEP = 10.0  # a bound on any one step, so that a bug fails instead of hanging
TASKS = ex.render(
    [ex.family(md.GCS_METRICS["ray_tasks"], [(("f", "RUNNING", "0", "01000000", "gcs"), 2)])]
).decode()
NODE_TEXT = ex.render(
    [ex.family(md.NODE_METRICS["ray_node_cpu_count"], [((), 4)], ("ab" * 28, "h"))]
).decode()


class FakeGcs:
    def __init__(self, text: str, nodes: list[m.NodeState] | None = None) -> None:
        self.text = text
        self.nodes = nodes or []
        self.asked: list[str] = []

    async def call(self, msg: Any, timeout: float = 10.0) -> Any:
        self.asked.append(type(msg).__name__)
        await asyncio.sleep(0)
        if isinstance(msg, m.GetNodes):
            return self.nodes
        if self.text == "gone":
            raise ConnectionError("the gcs is restarting")
        return self.text


class FakeNode:
    """A node daemon's RPC server that answers GetMetrics, on a Unix socket and TCP."""

    def __init__(self) -> None:
        dispatcher = Dispatcher()
        dispatcher.register(m.GetMetrics, lambda conn, msg: NODE_TEXT)
        self.disconnected: asyncio.Queue[Any] = asyncio.Queue()
        self.connected: list[Any] = []
        self.rpc = RpcServer(
            dispatcher,
            cluster_only(TOKEN),
            max_frame_bytes=1 << 20,
            on_connect=self.connected.append,
            on_disconnect=self.disconnected.put_nowait,
            tls=None,
        )

    async def listen(self, unix: str = "") -> m.NodeInfo:
        if unix:
            await self.rpc.listen_unix(unix)
        port = await self.rpc.listen_tcp("127.0.0.1", 0)
        return info(unix, port)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def info(unix: str = "", port: int = 7001) -> m.NodeInfo:
    return m.NodeInfo(NodeID.from_random(), "127.0.0.1", port, unix, "h", "", "", {}, {}, False, 1)


def alive(node: m.NodeInfo, is_alive: bool = True) -> m.NodeState:
    return m.NodeState(node, is_alive, {}, "", [], [], None)


def run(main: Any) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


def test_concurrent_scrapes_share_one_gather_until_the_clock_says_it_is_stale() -> None:
    gcs, clock = FakeGcs(TASKS), FakeClock()
    metrics = ClusterMetrics(gcs, TOKEN, Config(), clock)  # type: ignore[arg-type]

    async def main() -> None:
        first, second = await asyncio.gather(metrics.families(), metrics.families())
        assert first is second and gcs.asked.count("GetMetrics") == 1
        clock.advance(0.9)
        assert (await metrics.families())[0].name == "ray_tasks"  # still fresh: no new gather
        assert gcs.asked.count("GetMetrics") == 1
        clock.advance(0.1)
        await metrics.families()
        assert gcs.asked.count("GetMetrics") == 2
        await metrics.families(max_age=0.0)  # the history's: always a new one
        assert gcs.asked.count("GetMetrics") == 3
        assert b'ray_tasks{IsRetry="0"' in await metrics.exposition()
        metrics.close()

    run(main)


def test_an_unreadable_or_missing_answer_is_left_out() -> None:
    for text in ("this is { not prometheus", "gone"):
        metrics = ClusterMetrics(FakeGcs(text), TOKEN, Config())  # type: ignore[arg-type]

        async def main(metrics: ClusterMetrics = metrics) -> None:
            assert await metrics.families() == []
            metrics.close()

        run(main)


def test_an_unreachable_node_is_left_out_of_the_scrape() -> None:
    dead_end = alive(info(port=closed_port()))  # nothing listens there
    metrics = ClusterMetrics(FakeGcs(TASKS, [dead_end]), TOKEN, Config())  # type: ignore[arg-type]

    async def main() -> None:
        names = [fam.name for fam in await metrics.families()]
        assert names == ["ray_tasks"]
        metrics.close()

    run(main)


def test_a_node_whose_socket_file_does_not_answer_is_reached_over_tcp(tmp_path: Path) -> None:
    stale = tmp_path / "node.sock"
    stale.write_text("")  # there, but nothing listens: another host's path, say

    async def main() -> None:
        node = FakeNode()
        tcp_only = await node.listen()
        gcs = FakeGcs(TASKS, [alive(info(str(stale), tcp_only.port))])
        metrics = ClusterMetrics(gcs, TOKEN, Config())  # type: ignore[arg-type]
        names = sorted(fam.name for fam in await metrics.families())
        assert names == ["ray_node_cpu_count", "ray_tasks"]
        metrics.close()
        node.rpc.close()

    run(main)


def test_one_connection_per_node_is_kept_until_the_node_leaves(tmp_path: Path) -> None:
    async def main() -> None:
        node = FakeNode()
        state = alive(await node.listen(str(tmp_path / "node.sock")))
        gcs = FakeGcs(TASKS, [state])
        metrics = ClusterMetrics(gcs, TOKEN, Config(), FakeClock())  # type: ignore[arg-type]
        for _ in range(3):
            families = await metrics.families(max_age=0.0)
            assert "ray_node_cpu_count" in {fam.name for fam in families}
        assert len(node.connected) == 1
        gcs.nodes = [alive(state.info, is_alive=False)]  # the gcs says it died
        await metrics.families(max_age=0.0)
        await asyncio.wait_for(node.disconnected.get(), STEP)  # its connection is closed
        assert len(node.rpc.connections) == 0
        metrics.close()
        node.rpc.close()

    run(main)
