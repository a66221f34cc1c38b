"""``python -m manta._private.node``: run a node daemon."""

from __future__ import annotations

import sys

from manta._private.node.template_launch import Launched, launch_from_argv


def main(template: Launched | None) -> None:
    """Run the daemon; ``template``: the worker template, launched before these imports."""
    import json
    import logging

    from manta._private.common import daemon
    from manta._private.common.ids import NodeID
    from manta._private.common.session import read_token
    from manta._private.node.service import NodeParams, NodeService
    from manta._private.node.template_launch import launch_template
    from manta._private.rpc import tls

    logger = logging.getLogger("manta.node")
    parser = daemon.argument_parser("manta-node")
    parser.add_argument("--gcs-address", required=True)
    parser.add_argument("--resources", default="{}")
    parser.add_argument("--labels", default="{}")
    parser.add_argument("--head", action="store_true")
    parser.add_argument("--node-id", default="")
    args = parser.parse_args()
    template = template or launch_template(args.session_dir)
    config, loop = daemon.start(args)
    daemon.or_exit(tls.use, config)
    params = NodeParams(
        session_dir=args.session_dir,
        gcs_address=args.gcs_address,
        host=args.host,
        port=args.port,
        resources=json.loads(args.resources),
        labels=json.loads(args.labels),
        is_head=args.head,
        token=read_token(args.session_dir),
        config=config,
        node_id=NodeID.from_hex(args.node_id) if args.node_id else NodeID.from_random(),
    )
    service = NodeService(params, template)

    def stop() -> None:
        loop.create_task(service.stop())

    daemon.on_stop_signals(loop, stop)
    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.run_startup(loop, service.start(), f"starting the node daemon (gcs at {args.gcs_address})")
    logger.info("node %s up: %s:%d", params.node_id.hex()[:8], params.host, service.port)
    daemon.report_ready(
        args.ready_fd,
        {
            "node_id": params.node_id.hex(),
            "port": service.port,
            "unix": service.unix,
            "arena_path": service.store.arena.path,
            "store_warning": service.store.warning or "",
        },
    )
    loop.run_until_complete(service.stopped.wait())


if __name__ == "__main__":
    # First thing, before the node's own imports: the worker template's (the whole core
    # worker, the longest of any process) then run beside them; the first worker is
    # ready sooner.
    main(launch_from_argv(sys.argv[1:]))
