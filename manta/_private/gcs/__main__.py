"""``python -m manta._private.gcs``: run the gcs daemon."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from manta._private.common import daemon
from manta._private.common.config import Config
from manta._private.common.session import read_token
from manta._private.gcs.service import GcsService
from manta._private.gcs.storage import open_storage
from manta._private.rpc.loop import new_event_loop

logger = logging.getLogger("manta.gcs")


def main() -> None:
    parser = argparse.ArgumentParser(prog="manta-gcs")
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--unix", default="")
    parser.add_argument("--storage", default="memory://")
    parser.add_argument("--config", default="{}")
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--lifeline-fd", type=int)
    args = parser.parse_args()
    config = Config(**json.loads(args.config))
    daemon.setup_logging(config.log_level)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    service = GcsService(open_storage(args.storage), config, read_token(args.session_dir))
    port = loop.run_until_complete(service.start(args.host, args.port, args.unix or None))
    logger.info("gcs listening on %s:%d", args.host, port)

    def stop() -> None:
        service.stop()
        loop.stop()

    daemon.on_stop_signals(loop, stop)
    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.report_ready(args.ready_fd, {"port": port})
    loop.run_forever()


if __name__ == "__main__":
    main()
