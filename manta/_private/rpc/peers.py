"""Who is at the other end of a socket, as far as the OS says: for log lines, for refusing
other local users on Unix sockets, and for naming the process that holds a port."""

from __future__ import annotations

import os
import socket
from typing import Any

import psutil


def _peer_credentials(sock: Any) -> tuple[int, int] | None:
    """(pid, uid) of the process at the other end of a Unix socket, where the OS says."""
    if sock is None or getattr(sock, "family", None) != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    except OSError:
        return None
    pid, uid, _gid = (int.from_bytes(creds[i : i + 4], "little") for i in (0, 4, 8))
    return pid, uid


def format_peer(peername: Any, sock: Any = None) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    creds = _peer_credentials(sock)
    if creds is not None:
        return f"unix-socket peer pid={creds[0]} uid={creds[1]}"
    return str(peername) if peername else "unix-socket peer"


def foreign_local_user(sock: Any) -> int | None:
    """The uid of a Unix-socket peer that is another (non-root) user, else None. Sockets
    are made 0600, so only root could connect as someone else; checked anyway, before the
    peer may say anything."""
    creds = _peer_credentials(sock)
    if creds is None or creds[1] in (os.getuid(), 0):
        return None
    return creds[1]


def port_holder(port: int) -> str:
    """`` by pid N (cmdline)`` for the process listening on ``port``, when it can be seen."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                cmdline = " ".join(psutil.Process(conn.pid).cmdline())[:100]
                return f" by pid {conn.pid} ({cmdline})"
    except (psutil.Error, OSError):
        pass
    return ""
