"""The ``local`` node provider: each node is a ``manta start --address HEAD --block``
process on this machine, in a directory of its own (MANTA_TMPDIR), joining with the
cluster's token read from the head's session (never on a command line).

What it started is written down (``launched.json`` beside the nodes' directories), so an
autoscaler that restarts still knows its nodes; a node whose process has exited is
forgotten. Terminating sends SIGINT (``--block`` then stops the node's daemons, which
leave the cluster gracefully); after a grace period, SIGKILL to it and to its daemons.
When the autoscaler stops, it stops its nodes too: they belong to this head.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from manta._private.autoscaler.config import AutoscalingConfigError, NodeType
from manta._private.autoscaler.provider import Launched, ProviderError, start_options
from manta._private.common.session import AUTOSCALER_STOP_S, daemon_pids, signal_daemon, write_json_atomic

logger = logging.getLogger("manta.autoscaler")

_STATE = "launched.json"
# A node's time to stop after SIGINT, within the time the autoscaler has to stop them all.
STOP_GRACE_S = AUTOSCALER_STOP_S / 2
_NODE_CONFIG_KEYS = {"object_store_memory"}


@dataclass(frozen=True, slots=True)
class _Record:
    node_type: str
    launched_at: float
    pid: int
    started: float  # the process's start time: a pid reused by another process is not ours
    tmpdir: str


class LocalProvider:
    def __init__(self, gcs_address: str, token_file: str, state_dir: str, log_dir: str) -> None:
        self._gcs = gcs_address
        self._token_file = token_file
        self._dir = state_dir
        self._log_dir = log_dir
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        # The rounds call from a worker thread, the stop signal from the loop's: one at a time.
        self._lock = threading.Lock()
        self._closed = False
        self._nodes: dict[str, _Record] = self._read()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping: dict[str, float] = {}  # launch id -> when SIGINT was sent

    def check_node_config(self, node_type: NodeType) -> None:
        unknown = set(node_type.node_config) - _NODE_CONFIG_KEYS
        if unknown:
            raise AutoscalingConfigError(
                f"node type {node_type.name!r}: the local provider's node_config takes "
                f"{', '.join(sorted(_NODE_CONFIG_KEYS))}, not {', '.join(sorted(unknown))}"
            )

    def launch(self, node_type: NodeType, launch_id: str) -> None:
        tmpdir = os.path.join(self._dir, "nodes", launch_id)
        log_path = os.path.join(self._log_dir, f"autoscaler-node-{launch_id}.log")
        with self._lock:
            if self._closed:  # a launch that raced the autoscaler's stop
                raise ProviderError("the autoscaler is stopping")
            os.makedirs(tmpdir, mode=0o700, exist_ok=True)
            try:
                with open(log_path, "ab") as log:
                    proc = subprocess.Popen(
                        self._command(node_type, launch_id),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "MANTA_TMPDIR": tmpdir},
                        start_new_session=True,  # its own group: a Ctrl-C on the head is not its
                    )
            except OSError as e:
                raise ProviderError(f"could not start a {node_type.name} node: {e}") from e
            self._procs[launch_id] = proc
            started = psutil.Process(proc.pid).create_time()
            self._nodes[launch_id] = _Record(node_type.name, time.time(), proc.pid, started, tmpdir)
            self._write()
        logger.info(
            "launched a %s node (launch %s, pid %d; log %s)", node_type.name, launch_id, proc.pid, log_path
        )

    def _command(self, node_type: NodeType, launch_id: str) -> list[str]:
        command = [sys.executable, "-m", "manta.cli.main", "start", "--address", self._gcs]
        command += ["--token-file", self._token_file, *start_options(node_type, launch_id), "--block"]
        if "object_store_memory" in node_type.node_config:
            command += ["--object-store-memory", str(int(node_type.node_config["object_store_memory"]))]
        return command

    def terminate(self, launch_id: str) -> None:
        with self._lock:
            self._terminate(launch_id)

    def _terminate(self, launch_id: str) -> None:
        record = self._nodes.get(launch_id)
        if record is None or launch_id in self._stopping:
            return
        self._stopping[launch_id] = time.monotonic()
        _signal(record.pid, signal.SIGINT)

    def launched(self) -> list[Launched]:
        with self._lock:
            self._reap()
            return [
                Launched(launch_id, r.node_type, r.launched_at)
                for launch_id, r in self._nodes.items()
                if launch_id not in self._stopping
            ]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for launch_id in list(self._nodes):
                self._terminate(launch_id)
            deadline = time.monotonic() + STOP_GRACE_S
            while self._nodes and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            for launch_id in list(self._nodes):
                self._stopping[launch_id] = float("-inf")  # past its grace: killed now
            self._reap()

    def _reap(self) -> None:
        """Forget nodes whose process has exited; kill those that outstay their grace."""
        gone = []
        for launch_id, record in self._nodes.items():
            if not self._running(launch_id, record):
                gone.append(launch_id)
            elif time.monotonic() - self._stopping.get(launch_id, float("inf")) > STOP_GRACE_S:
                _kill_group(record.pid)
                _kill_daemons(record.tmpdir)  # in sessions of their own: not in its group
        for launch_id in gone:
            del self._nodes[launch_id]
            self._stopping.pop(launch_id, None)
            self._procs.pop(launch_id, None)
        if gone:
            self._write()

    def _running(self, launch_id: str, record: _Record) -> bool:
        proc = self._procs.get(launch_id)
        if proc is not None:
            return proc.poll() is None
        try:  # started by an earlier run of the autoscaler: not our child
            return abs(psutil.Process(record.pid).create_time() - record.started) < 0.01
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True

    def _read(self) -> dict[str, _Record]:
        try:
            with open(os.path.join(self._dir, _STATE)) as f:
                raw: dict[str, Any] = json.load(f)
            return {launch_id: _Record(**record) for launch_id, record in raw.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError) as e:
            logger.error("ignoring the unreadable record of launched nodes %s: %s", _STATE, e)
            return {}

    def _write(self) -> None:
        records = {launch_id: asdict(r) for launch_id, r in self._nodes.items()}
        write_json_atomic(os.path.join(self._dir, _STATE), records)


def _kill_daemons(tmpdir: str) -> None:
    """SIGKILL the daemons a node's ``manta start`` left (they run in sessions of their own,
    so killing its process group does not reach them)."""
    for session_dir in glob.glob(os.path.join(tmpdir, "session_*")):
        for pid in daemon_pids(session_dir).values():
            signal_daemon(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
