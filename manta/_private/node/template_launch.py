"""Starting the worker template, with nothing but the standard library imported.

The node daemon calls this first thing, before its own imports: the template's imports
(the whole core worker) then run beside the node's instead of after them, and the first
worker is ready sooner. The template learns its workers' settings later, from the first
frame the node sends on the pair (see ``worker_template``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

# The template's process and the node's end of the socket pair to it.
Launched = tuple[subprocess.Popen[bytes], socket.socket]


def launch_template(session_dir: str) -> Launched:
    """Start ``python -m manta._private.worker_template``; the node's end of its socket pair."""
    parent, child = socket.socketpair()
    base = os.path.join(session_dir, "logs", "worker-template")
    try:
        with open(base + ".out", "ab") as out, open(base + ".err", "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "manta._private.worker_template", str(child.fileno())],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return proc, parent


def launch_from_argv(argv: list[str]) -> Launched | None:
    """The template of the node whose arguments are ``argv``, launched now; None when they
    name no session directory (the node's argument parser then says what is wrong)."""
    try:
        session_dir = argv[argv.index("--session-dir") + 1]
    except (ValueError, IndexError):
        return None
    return launch_template(session_dir) if os.path.isdir(session_dir) else None
