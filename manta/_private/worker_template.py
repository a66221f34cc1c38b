"""The worker template: a pre-imported process that forks new workers in milliseconds.

A fresh interpreter that imports the core worker costs a few hundred milliseconds; a fork
of one that already has costs a few. The node daemon starts this process once and talks
to it over a socket pair with the RPC framing (no handshake: the pair is private). It
stays single-threaded and never runs an event loop, so forking it is safe.

The node starts it before the node itself is set up, so its first frame, ``TemplateParams``,
brings what the workers start with. Requests: ``ForkWorker`` -> replies ``Forked(pid)``,
or ``ForkFailed`` when the fork itself fails. Whenever a child exits it sends
``ChildExited`` with the exit code or signal. It exits when the node daemon does.
"""

from __future__ import annotations

import errno
import gc
import os
import selectors
import signal
import socket
import sys
from typing import Any

from manta._private.common.pdeathsig import die_with_parent
from manta._private.rpc import codec
from manta._private.rpc.messages import ChildExited, Forked, ForkFailed, ForkWorker, TemplateParams


def _send(sock: socket.socket, msg: Any) -> None:
    payload = codec.encode(msg)
    sock.sendall(len(payload).to_bytes(4, "big") + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        try:
            chunk = sock.recv(n)
        except InterruptedError:
            continue
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> Any:
    """The next message from the node daemon, or None once it has closed the pair."""
    header = _recv_exact(sock, 4)
    body = None if header is None else _recv_exact(sock, int.from_bytes(header, "big"))
    return None if body is None else codec.decode(body)


def serve(fd: int) -> None:
    """Run the template loop on the inherited socket ``fd``. Never returns in children."""
    die_with_parent()
    # Import what every worker needs now, once, so forks inherit it.
    from manta._private import worker_main

    # Frozen before the first fork, as the gc docs advise: collections in the workers then
    # never walk (nor write to, copying the page) the objects they share with this process.
    gc.collect()
    gc.freeze()
    sock = socket.socket(fileno=fd)
    first = _recv_frame(sock)
    if not isinstance(first, TemplateParams):
        os._exit(0)  # the node daemon is gone (or broke the protocol) before it set us up
    worker_params = first.params
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "sock")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    while True:
        for key, _ in selector.select():
            if key.data == "wake":
                os.read(wake_r, 4096)
                _reap(sock)
                continue
            msg = _recv_frame(sock)
            if msg is None:
                os._exit(0)  # the node daemon is gone
            if isinstance(msg, ForkWorker):
                try:
                    pid = os.fork()
                except OSError as e:  # this worker does not start; the node and the others go on
                    _send(sock, ForkFailed(msg.worker_id, str(e)))
                    continue
                if pid == 0:
                    _child(msg, worker_params, [sock.fileno(), wake_r, wake_w], worker_main)
                _send(sock, Forked(msg.worker_id, pid))
        _reap(sock)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        exit_code, sig = (None, -code) if code < 0 else (code, None)
        _send(sock, ChildExited(pid, exit_code, sig))


def _child(msg: ForkWorker, params: dict[str, Any], close_fds: list[int], worker_main: Any) -> None:
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in close_fds:
            os.close(fd)
        die_with_parent()
        # Read-write: the executor reads the last byte back to keep task markers on lines of their own.
        out = os.open(msg.stdout_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(msg.stderr_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.environ.update(msg.env)
        worker_main.run(msg.worker_id, {**params, "log_path": msg.stdout_path[: -len(".out")] + ".log"})
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
