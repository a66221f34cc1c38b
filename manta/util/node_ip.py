"""``manta.util.get_node_ip_address``: the address of the node this process runs on."""

from __future__ import annotations

import socket

from manta._private.api.context import current_worker


def get_node_ip_address(address: str | None = None) -> str:
    """The IP address the node this process is on serves the cluster at. Outside a
    cluster: this host's name resolved, else 127.0.0.1. (``address``, a host Ray would
    route a probe towards, is accepted for Ray's signature; Manta sends no probe.)"""
    worker = current_worker()
    if worker is not None:
        return str(worker.session.host)
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
