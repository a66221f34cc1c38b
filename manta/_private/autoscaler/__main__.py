"""``python -m manta._private.autoscaler``: the autoscaler daemon of a head started with
``manta start --head --autoscaling-config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from manta._private.autoscaler import config as autoscaling
from manta._private.autoscaler.local_provider import LocalProvider
from manta._private.autoscaler.monitor import Monitor
from manta._private.autoscaler.provider import NodeProvider
from manta._private.common import daemon
from manta._private.common.config import Config
from manta._private.common.session import LOGS_DIR, read_token
from manta._private.rpc import messages as m
from manta._private.rpc import tls
from manta._private.rpc.endpoints import connect_with_retry
from manta._private.rpc.transport import Connection, Dispatcher

logger = logging.getLogger("manta.autoscaler")

_CALL_TIMEOUT_S = 30.0


def main() -> None:
    parser = daemon.argument_parser("manta-autoscaler")
    parser.add_argument("--gcs-address", required=True)
    parser.add_argument("--autoscaling-config", required=True)
    args = parser.parse_args()
    config, loop = daemon.start(args)
    daemon.or_exit(tls.use, config)
    settings = daemon.or_exit(autoscaling.load, args.autoscaling_config)
    provider = daemon.or_exit(_provider, settings, args)
    gcs = _Gcs(args.gcs_address, read_token(args.session_dir), config)
    daemon.run_startup(loop, gcs.call(m.Ping()), "reaching the gcs")
    monitor = Monitor(settings, provider, gcs.call, config.autoscaler_join_timeout_s)
    rounds = loop.create_task(monitor.run(config.autoscaler_update_interval_s))
    logger.info(
        "autoscaler running: %s provider, node types %s",
        settings.provider["type"],
        ", ".join(sorted(settings.worker_types())),
    )

    def stop() -> None:
        rounds.cancel()
        provider.shutdown()
        loop.stop()

    daemon.on_stop_signals(loop, stop)
    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.report_ready(args.ready_fd, {"pid": os.getpid()})
    loop.run_forever()


def _provider(settings: autoscaling.AutoscalingConfig, args: argparse.Namespace) -> NodeProvider:
    provider: NodeProvider
    if settings.provider["type"] == "kubernetes":
        from manta._private.autoscaler.kubernetes_provider import KubernetesProvider

        provider = KubernetesProvider(settings.cluster_name, settings.provider)
    else:
        session_dir: str = args.session_dir
        provider = LocalProvider(
            args.gcs_address,
            os.path.join(session_dir, "token"),
            os.path.join(session_dir, "autoscaler"),
            os.path.join(session_dir, LOGS_DIR),
        )
    for node_type in settings.worker_types().values():
        provider.check_node_config(node_type)
    return provider


class _Gcs:
    """Calls to the gcs over one connection, made again when the gcs has restarted."""

    def __init__(self, address: str, token: bytes, config: Config) -> None:
        self._address = address
        self._token = token
        self._config = config
        self._conn: Connection | None = None

    async def call(self, msg: Any) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = await connect_with_retry(
                self._address,
                self._token,
                Dispatcher(),
                attempts_s=self._config.gcs_reconnect_timeout_s,
                kind="autoscaler",
                max_frame_bytes=self._config.max_frame_bytes,
            )
        return await asyncio.wait_for(self._conn.call(msg), _CALL_TIMEOUT_S)


if __name__ == "__main__":
    main()
