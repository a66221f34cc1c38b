"""``python -m manta._private.gcs``: run the gcs daemon."""

from __future__ import annotations

import gc
import logging
import os

from manta._private.common import daemon
from manta._private.common.session import LOGS_DIR, read_token, remove_socket_dir_if_empty
from manta._private.gcs.service import GcsService
from manta._private.gcs.storage import open_storage
from manta._private.rpc import tls

logger = logging.getLogger("manta.gcs")


def main() -> None:
    parser = daemon.argument_parser("manta-gcs")
    parser.add_argument("--unix", default="")
    parser.add_argument("--storage", default="memory://")
    args = parser.parse_args()
    config, loop = daemon.start(args)
    # The gcs holds up to 100,000 task-event rows, and more records besides: collecting
    # every 700 new objects walks them again and again (it doubled the cost of filing
    # task events, bench/task_events.py). Collect an order of magnitude less often.
    gc.set_threshold(10_000, 10, 10)
    daemon.or_exit(tls.use, config)
    service = GcsService(
        open_storage(args.storage),
        config,
        read_token(args.session_dir),
        os.path.join(args.session_dir, LOGS_DIR),
    )
    port = daemon.run_startup(
        loop, service.start(args.host, args.port, args.unix or None), "starting the gcs"
    )
    logger.info("gcs listening on %s:%d", args.host, port)

    def stop() -> None:
        service.stop()
        remove_socket_dir_if_empty(args.session_dir)
        loop.stop()

    daemon.on_stop_signals(loop, stop)
    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.report_ready(args.ready_fd, {"port": port})
    loop.run_forever()


if __name__ == "__main__":
    main()
