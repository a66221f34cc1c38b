"""The dashboard daemon: ``python -m manta.dashboard --session-dir DIR --port 8265 ...``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time

from aiohttp import web

from manta._private.common import daemon
from manta._private.common.ratelimit import RequestBuckets
from manta._private.common.session import ADDRESS_FILE, read_token
from manta._private.rpc import tls
from manta._private.rpc.auth import Grant
from manta._private.rpc.messages import access as a
from manta.dashboard.auth import Authenticator, allowed_hosts
from manta.dashboard.client_port import ClientPort
from manta.dashboard.cluster_metrics import ClusterMetrics
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.job_manager import JobManager
from manta.dashboard.routes import all_routes
from manta.dashboard.server import make_app
from manta.dashboard.sessions import Sessions

logger = logging.getLogger("manta.dashboard")

# Largest upload (a runtime-env package) the service accepts.
MAX_UPLOAD_BYTES = 512 << 20


async def _pick_up_jobs(jobs: JobManager, session_dir: str) -> None:
    # The cluster's address file appears once every daemon of the head is up.
    while not os.path.exists(os.path.join(session_dir, ADDRESS_FILE)):
        await asyncio.sleep(0.1)
    delay = 1.0
    while True:  # the gcs may be restarting too: keep trying, less and less often
        try:
            await jobs.start()
            return
        except Exception as e:
            logger.warning(
                "could not pick up the jobs that were running (%s); trying again in %.0f s", e, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


def _arguments() -> argparse.Namespace:
    parser = daemon.argument_parser("manta-dashboard")
    parser.add_argument("--listen-fd", type=int, default=None, help="a listening socket to serve on")
    parser.add_argument(
        "--client-listen-fd", type=int, default=None, help="a listening socket for remote drivers"
    )
    parser.add_argument(
        "--client-port", type=int, default=None, help="the port for remote drivers (a restart)"
    )
    return parser.parse_args()


async def _serve_clients(client_port: ClientPort, args: argparse.Namespace) -> None:
    """The client port, on the socket the launcher bound, or again on its port (a restart)."""
    if args.client_listen_fd is not None:
        await client_port.serve(socket.socket(fileno=args.client_listen_fd))
    elif args.client_port is not None:
        await client_port.serve(socket.create_server((args.host, args.client_port), backlog=128))


def main() -> None:
    args = _arguments()
    config, loop = daemon.start(args)
    settings = daemon.or_exit(tls.use, config)
    https = None if settings is None else settings.http
    gcs = GcsLink(args.session_dir, config)

    async def ask_gcs(token: bytes) -> Grant | None:
        answer = await gcs.call(a.VerifyToken(token))
        return None if answer is None else Grant(*answer)

    auth = Authenticator(read_token(args.session_dir), ask_gcs, time.monotonic)
    jobs = JobManager(args.session_dir, config.job_start_timeout_s)
    limits = RequestBuckets(time.monotonic, config.http_requests_per_s, 2 * config.http_requests_per_s)
    metrics = ClusterMetrics(gcs, read_token(args.session_dir), config)
    app = make_app(
        all_routes(jobs, gcs, MAX_UPLOAD_BYTES, metrics),
        auth,
        allowed_hosts(config.dashboard_allowed_hosts),
        gcs.audit,
        limits,
        Sessions(time.monotonic),
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    client_port = ClientPort(args.session_dir, config, auth.grant_for, gcs.audit)

    async def startup() -> int:
        await runner.setup()
        if args.listen_fd is not None:  # bound by the launcher
            site: web.BaseSite = web.SockSite(runner, socket.socket(fileno=args.listen_fd), ssl_context=https)
        else:  # started again on its old port (a restart)
            site = web.TCPSite(runner, args.host, args.port, backlog=128, ssl_context=https)
        await site.start()
        await _serve_clients(client_port, args)
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else args.port

    port = daemon.run_startup(loop, startup(), f"listening on {args.host}:{args.port}")
    logger.info("dashboard listening on %s://%s:%d", "http" if https is None else "https", args.host, port)
    daemon.report_ready(args.ready_fd, {"port": port})
    stopping = loop.create_future()

    def stop() -> None:
        if not stopping.done():
            stopping.set_result(None)

    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.on_stop_signals(loop, stop)
    pick_up = loop.create_task(_pick_up_jobs(jobs, args.session_dir))
    sampling = loop.create_task(metrics.sample_loop())
    loop.run_until_complete(stopping)
    pick_up.cancel()
    sampling.cancel()
    metrics.close()
    loop.run_until_complete(client_port.close())
    loop.run_until_complete(jobs.close())
    loop.run_until_complete(gcs.close())
    loop.run_until_complete(runner.cleanup())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(0)


if __name__ == "__main__":
    main()
