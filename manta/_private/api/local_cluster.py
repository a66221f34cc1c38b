"""Starting and stopping a private single-node cluster for ``init()``.

The gcs and the node daemon start in parallel (the node finds the gcs at a Unix socket
whose path is known in advance), each reporting readiness on a pipe. Both hold the read
end of a *lifeline* pipe whose only writer is this process: if the driver dies, even by
SIGKILL, they read EOF and shut down, and their workers with them.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.config import Config, env_name
from manta._private.common.session import (
    ADDRESS_FILE,
    AUTOSCALER_STOP_S,
    DAEMONS_IN_STOP_ORDER,
    SessionInfo,
    create_session_dir,
    log_paths,
    remove_socket_dir,
    socket_path,
    write_json_atomic,
    write_token,
)
from manta.exceptions import ClusterStartError

logger = logging.getLogger("manta")

_START_TIMEOUT_S = 60.0


def _listen(host: str, port: int, what: str = "the dashboard") -> socket.socket:
    """A listening TCP socket on ``host:port``; a negative port is a preference (that
    port if free, else any free one)."""
    for candidate in (abs(port), 0) if port < 0 else (port,):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as e:
            sock.close()
            if candidate == 0 or port >= 0:
                raise ClusterStartError(f"{what} cannot listen on {host}:{candidate}: {e}") from None
            continue
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


@dataclass
class LocalCluster:
    config: Config
    # Detached clusters (``manta start``) outlive the process that started them.
    detached: bool = False
    session_dir: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    _lifeline_w: int | None = None
    _lifeline_r: int | None = None
    # How each daemon was started, to start it again (``restart``).
    _commands: dict[str, tuple[str, dict[str, str | None]]] = field(default_factory=dict)

    def start(
        self,
        *,
        resources: dict[str, float],
        labels: dict[str, str],
        host: str = "127.0.0.1",
        join: str | None = None,
        token: bytes | None = None,
        gcs_port: int = 0,
        storage: str = "memory://",
        dashboard: tuple[str, int] | None = None,
        client_port: int | None = None,
        while_starting: Callable[[], object] | None = None,
    ) -> SessionInfo:
        """Start a head (gcs + node daemon, and the dashboard's HTTP service on
        ``dashboard`` = (host, port) if given, which also serves remote drivers on
        ``client_port`` if given), or with ``join`` (the head's gcs
        ``host:port``) a node daemon that joins that cluster with ``token``;
        ``while_starting`` runs once they are launched, before waiting for them."""
        self.session_dir = create_session_dir(self.config.tmpdir)
        token = write_token(self.session_dir, token)
        lifeline_r, lifeline_w = os.pipe()
        if self.detached:
            os.close(lifeline_w)
        else:
            self._lifeline_w = lifeline_w
        gcs_unix = socket_path(self.session_dir, "gcs")
        common: dict[str, str | None] = {
            "session-dir": self.session_dir,
            "host": host,
            # Command lines are readable by every local user: never put the token there
            # (daemons read it from the session directory, mode 0600).
            "config": json.dumps(self.config.replace(auth_token="").to_dict()),
        }
        if not self.detached:
            common["lifeline-fd"] = str(lifeline_r)
        node_options: dict[str, str | None] = {
            "gcs-address": join or "unix:" + gcs_unix,
            "resources": json.dumps(resources),
            "labels": json.dumps(labels),
        }
        daemons: list[tuple[str, str, dict[str, str | None]]] = []
        if join is None:
            node_options["head"] = None
            gcs_options = {**common, "unix": gcs_unix, "port": str(gcs_port), "storage": storage}
            daemons.append(("gcs", "manta._private.gcs", gcs_options))
        daemons.append(("node", "manta._private.node", {**common, **node_options}))
        try:
            readers = self._spawn_daemons(daemons, lifeline_r)
            if dashboard is not None and join is None:
                self._start_dashboard(dashboard, client_port, common, lifeline_r)
            if while_starting is not None:
                while_starting()  # the caller's own start-up work, beside the daemons'
            reports = self._wait_ready(readers)
        except BaseException:
            os.close(lifeline_r)
            self.stop()
            raise
        if self.detached:
            os.close(lifeline_r)
        else:
            self._lifeline_r = lifeline_r  # kept to start a daemon again (restart)
        node = self._record(reports, host, join, gcs_unix)
        if node.get("store_warning"):
            logger.warning(node["store_warning"])
        return SessionInfo(
            session_dir=self.session_dir,
            node_id=bytes.fromhex(node["node_id"]),
            node_address="unix:" + node["unix"],
            gcs_address=join or "unix:" + gcs_unix,
            arena_path=node["arena_path"],
            host=host,
            token=token,
        )

    def _record(
        self, reports: dict[str, dict[str, Any]], host: str, join: str | None, gcs_unix: str
    ) -> dict[str, Any]:
        """Write down where the daemons listen (address.json, what drivers and tools read);
        the node daemon's report."""
        node = reports["node"]
        self.info = {
            "role": "worker" if join else "head",
            "detached": self.detached,
            "host": host,
            "gcs_address": join or f"{host}:{reports['gcs']['port']}",
            "node_id": node["node_id"],
            "node_port": node["port"],
            "node_unix": node["unix"],
            "arena_path": node["arena_path"],
            "pids": {name: p.pid for name, p in self.procs.items()},
        }
        if join is None:
            self.info["gcs_unix"] = gcs_unix
        if "dashboard" in self._commands:
            http = self._commands["dashboard"][1]
            self.info["dashboard_url"] = f"{http['host']}:{http['port']}"
            if http.get("client-port"):
                self.info["client_address"] = f"manta://{http['host']}:{http['client-port']}"
        write_json_atomic(os.path.join(self.session_dir, ADDRESS_FILE), self.info)
        return node

    def restart(self, name: str) -> None:
        """Kill one daemon (SIGKILL) and start it again as before, on the same port: how
        tests play a crashed gcs that its supervisor brings back."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        module, options = self._commands[name]
        if name == "gcs":
            options = {**options, "port": self.info["gcs_address"].rsplit(":", 1)[1]}
        self._launch_one(name, module, options)

    def start_autoscaler(self, config_path: str) -> None:
        """Start a head's autoscaler (after ``start``) with the autoscaling config at
        ``config_path``; one it cannot use fails here, with its reason."""
        options: dict[str, str | None] = {
            "session-dir": self.session_dir,
            "host": self.info["host"],
            "config": json.dumps(self.config.replace(auth_token="").to_dict()),
            "gcs-address": "unix:" + self.info["gcs_unix"],
            "autoscaling-config": os.path.abspath(config_path),
        }
        if self._lifeline_r is not None:
            options["lifeline-fd"] = str(self._lifeline_r)
        self._commands["autoscaler"] = ("manta._private.autoscaler", options)
        self._launch_one("autoscaler", "manta._private.autoscaler", options)

    def _launch_one(self, name: str, module: str, options: dict[str, str | None]) -> None:
        """Start one daemon, wait until it is ready, and write down its pid."""
        ready_r, ready_w = os.pipe()
        keep = () if self._lifeline_r is None else (self._lifeline_r,)  # detached: no lifeline
        self._spawn(name, module, {**options, "ready-fd": str(ready_w)}, (ready_w, *keep))
        self._wait_ready({ready_r: name})
        self.info["pids"][name] = self.procs[name].pid
        write_json_atomic(os.path.join(self.session_dir, ADDRESS_FILE), self.info)

    def _start_dashboard(
        self, where: tuple[str, int], client_port: int | None, common: dict[str, str | None], lifeline_r: int
    ) -> None:
        """Start the HTTP service on a socket bound here, so its address is known (and a
        taken port reported) at once, and init() need not wait for it to start serving:
        connections queue on the socket meanwhile. The same for the client port."""
        listener = _listen(*where)
        options = {**common, "host": where[0], "port": str(listener.getsockname()[1])}
        client = None if client_port is None else _listen(where[0], client_port, "the client port")
        launch = {**options, "listen-fd": str(listener.fileno())}
        fds = [listener.fileno(), lifeline_r]
        if client is not None:
            options["client-port"] = str(client.getsockname()[1])
            launch["client-listen-fd"] = str(client.fileno())
            fds.append(client.fileno())
        self._commands["dashboard"] = ("manta.dashboard", options)
        try:
            self._spawn("dashboard", "manta.dashboard", launch, tuple(fds), close_first=False)
        finally:
            listener.close()
            if client is not None:
                client.close()

    def _spawn_daemons(
        self, daemons: list[tuple[str, str, dict[str, str | None]]], lifeline_r: int
    ) -> dict[int, str]:
        """Start the daemons all at once (the node finds the gcs at its socket path,
        retrying until it is up); the read ends of their readiness pipes, by name."""
        readers: dict[int, str] = {}
        for name, module, options in daemons:
            self._commands[name] = (module, options)
            ready_r, ready_w = os.pipe()
            self._spawn(name, module, {**options, "ready-fd": str(ready_w)}, (ready_w, lifeline_r))
            readers[ready_r] = name
        return readers

    def _spawn(
        self,
        name: str,
        module: str,
        options: dict[str, str | None],
        pass_fds: tuple[int, ...],
        close_first: bool = True,
    ) -> None:
        args = [sys.executable, "-m", module]
        for key, value in options.items():
            args.append("--" + key)
            if value is not None:
                args.append(value)
        out, err = log_paths(self.session_dir, name)
        with open(out, "ab") as fout, open(err, "ab") as ferr:
            self.procs[name] = subprocess.Popen(
                args,
                env=_child_env(self.config),
                pass_fds=pass_fds,
                stdin=subprocess.DEVNULL,
                stdout=fout,
                stderr=ferr,
                # Out of the driver's process group: a Ctrl-C in the terminal stops the
                # driver, whose exit then stops the daemons in order.
                start_new_session=True,
            )
        if close_first:  # the write end of its ready pipe: the child has its own now
            os.close(pass_fds[0])

    def _wait_ready(self, readers: dict[int, str]) -> dict[str, dict[str, Any]]:
        reports: dict[str, dict[str, Any]] = {}
        buffers = {fd: b"" for fd in readers}
        deadline = time.monotonic() + _START_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            for fd in readers:
                sel.register(fd, selectors.EVENT_READ)
            try:
                while len(reports) < len(readers):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        pending = [n for n in readers.values() if n not in reports]
                        raise ClusterStartError(
                            f"{', '.join(pending)} did not start within {_START_TIMEOUT_S:.0f} s"
                        )
                    for key, _ in sel.select(min(left, 0.5)):
                        fd = key.fd
                        chunk = os.read(fd, 4096)
                        if chunk:
                            buffers[fd] += chunk
                            continue
                        sel.unregister(fd)
                        name = readers[fd]
                        try:
                            reports[name] = json.loads(buffers[fd])
                        except ValueError:
                            raise ClusterStartError(self._failure_text(name)) from None
                    for name, proc in self.procs.items():
                        if name not in reports and proc.poll() is not None:
                            raise ClusterStartError(self._failure_text(name))
            finally:
                for fd in readers:
                    os.close(fd)
        return reports

    def _failure_text(self, name: str) -> str:
        proc = self.procs[name]
        code = proc.poll()
        _, err = log_paths(self.session_dir, name)
        try:
            with open(err, "rb") as f:
                tail = f.read()[-3000:].decode(errors="replace")
        except OSError:
            tail = ""
        status = "is still running" if code is None else f"exited with code {code}"
        return f"the {name} daemon failed to start ({status}); its log {err} ends with:\n{tail}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the daemons (node first, so it can stop its workers) and wait for them."""
        for name in DAEMONS_IN_STOP_ORDER:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    # The autoscaler stops the nodes it launched first (local provider).
                    proc.wait(timeout + (AUTOSCALER_STOP_S if name == "autoscaler" else 0.0))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._lifeline_w is not None:
            os.close(self._lifeline_w)
            self._lifeline_w = None
        if self._lifeline_r is not None:
            os.close(self._lifeline_r)
            self._lifeline_r = None
        if self.session_dir and not self.detached:
            remove_socket_dir(self.session_dir)
            # The node removes its arena at exit; if it crashed, the shared memory is ours to free.
            arena = self.info.get("arena_path")
            if arena and os.path.exists(arena):
                os.unlink(arena)


def _child_env(config: Config) -> dict[str, str]:
    """The daemons' environment: this one's, plus the TLS settings, so every process they
    start (workers, and the drivers of submitted jobs) has them too."""
    env = dict(os.environ)
    for name in ("tls_ca", "tls_cert", "tls_key", "tls_server_name"):
        if getattr(config, name):
            env[env_name(name)] = getattr(config, name)
    return env
