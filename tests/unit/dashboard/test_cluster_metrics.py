"""The head's gathering of daemon metrics, with a fake gcs: one gather serves concurrent
scrapes, and a daemon whose answer is unreadable or missing is left out, not fatal."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from manta._private.common import exposition as ex
from manta._private.common import metric_defs as md
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta.dashboard.cluster_metrics import ClusterMetrics, node_address

TASKS = ex.render(
    [ex.family(md.GCS_METRICS["ray_tasks"], [(("f", "RUNNING", "0", "01000000", "gcs"), 2)])]
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


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def info(unix: str = "", port: int = 7001) -> m.NodeInfo:
    return m.NodeInfo(NodeID.from_random(), "127.0.0.1", port, unix, "h", "", "", {}, {}, False, 1)


def test_concurrent_scrapes_share_one_gather_and_the_history_takes_a_fresh_one() -> None:
    gcs = FakeGcs(TASKS)
    metrics = ClusterMetrics(gcs, b"token", Config())  # type: ignore[arg-type]

    async def main() -> None:
        first, second = await asyncio.gather(metrics.families(), metrics.families())
        assert first is second and gcs.asked.count("GetMetrics") == 1
        assert (await metrics.families())[0].name == "ray_tasks"  # still fresh: no new gather
        assert gcs.asked.count("GetMetrics") == 1
        await metrics.families(max_age=0.0)
        assert gcs.asked.count("GetMetrics") == 2
        assert b'ray_tasks{IsRetry="0"' in await metrics.exposition()
        metrics.close()

    asyncio.run(main())


def test_an_unreadable_or_missing_answer_is_left_out() -> None:
    for text in ("this is { not prometheus", "gone"):
        metrics = ClusterMetrics(FakeGcs(text), b"token", Config())  # type: ignore[arg-type]

        async def main(metrics: ClusterMetrics = metrics) -> None:
            assert await metrics.families() == []
            metrics.close()

        asyncio.run(main())


def test_an_unreachable_node_is_left_out_of_the_scrape() -> None:
    dead_end = m.NodeState(info(port=closed_port()), True, {}, "", [], [], None)  # nothing listens there
    metrics = ClusterMetrics(FakeGcs(TASKS, [dead_end]), b"token", Config())  # type: ignore[arg-type]

    async def main() -> None:
        names = [fam.name for fam in await metrics.families()]
        assert names == ["ray_tasks"]
        metrics.close()

    asyncio.run(main())


def test_a_node_on_this_host_is_reached_by_its_socket(tmp_path) -> None:
    sock = tmp_path / "node.sock"
    sock.write_text("")
    assert node_address(info(str(sock))) == f"unix:{sock}"
    assert node_address(info(str(tmp_path / "elsewhere.sock"))) == "127.0.0.1:7001"
    assert node_address(info()) == "127.0.0.1:7001"
