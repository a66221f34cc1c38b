"""``Cluster``: several node daemons on this machine, as one cluster, for tests.

Each node has its own session directory, object store and ports; the first one added is
the head (it also runs the gcs). Every daemon holds a lifeline to this process, so a test
that dies leaves nothing running.

    cluster = Cluster()
    head = cluster.add_node(num_cpus=2)
    worker = cluster.add_node(num_cpus=2, resources={"gpu_box": 1})
    manta.init(address=cluster.address)   # or address="auto", here or in a child process
    ...
    cluster.remove_node(worker)       # stops it (allow_graceful=False: SIGKILL)
    cluster.shutdown()
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from manta._private.api import context
from manta._private.api.gcs_client import GcsClient
from manta._private.api.local_cluster import LocalCluster
from manta._private.api.node_resources import node_resources
from manta._private.common.config import Config, env_name
from manta._private.rpc import messages as m

# Whether Cluster cannot run on this platform (Ray's name; Windows has no fork server).
cluster_not_supported = os.name == "nt"

# Where init(address="auto") (or no address) looks first: set to the head's address while
# the cluster runs, for this process and the processes it starts (Ray writes a file that
# every process on the host reads; an environment variable keeps concurrent test runs on
# one host out of each other's clusters).
_ADDRESS_ENV = env_name("cluster_address")


class ClusterNode:
    """One node of a ``Cluster``: its daemons and where they are."""

    def __init__(self, processes: LocalCluster, head: bool) -> None:
        self._processes = processes
        self.head = head
        self.node_id: str = processes.info["node_id"]
        self.unique_id = self.node_id
        self.node_ip_address: str = processes.info["host"]
        self.address: str = processes.info["gcs_address"]
        self.session_dir = processes.session_dir
        # "host:port" of the head's HTTP service when it was asked for (include_dashboard).
        self.dashboard_url: str | None = processes.info.get("dashboard_url")

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._processes.procs.items()}

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self._processes.procs.values())

    def kill(self) -> None:
        """SIGKILL this node's daemons (its workers follow their node daemon)."""
        for proc in self._processes.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self._processes.procs.values():
            proc.wait()
        self._processes.stop()

    def stop(self) -> None:
        self._processes.stop()

    def restart_gcs(self) -> None:
        """SIGKILL the head's gcs and start it again on the same port and storage (what a
        supervisor does after a crash); the cluster keeps running through the gap."""
        if not self.head:
            raise ValueError("only the head node runs the gcs")
        self._processes.restart("gcs")

    def restart_dashboard(self) -> None:
        """SIGKILL the head's HTTP service and start it again on the same port."""
        if "dashboard" not in self._processes.procs:
            raise ValueError("this node runs no dashboard (add the head with include_dashboard=True)")
        self._processes.restart("dashboard")

    def __repr__(self) -> str:
        return f"ClusterNode(node_id={self.node_id[:12]}, head={self.head})"


class Cluster:
    def __init__(
        self,
        initialize_head: bool = False,
        connect: bool = False,
        head_node_args: dict[str, Any] | None = None,
        shutdown_at_exit: bool = True,
    ) -> None:
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self._token = b""
        # The head's _system_config: cluster-wide in Ray, so every later node gets it too.
        self._system_config: dict[str, Any] = {}
        self._connected = False
        self._advertised: str | None = None  # the address this cluster put in _ADDRESS_ENV
        self._address_env_before: str | None = None
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    @property
    def address(self) -> str | None:
        """The head's gcs address; None until the first node is added (as in Ray)."""
        return None if self.head_node is None else self.head_node.address

    @property
    def gcs_address(self) -> str | None:
        return self.address

    def _head_address(self) -> str:
        if self.head_node is None:
            raise RuntimeError("the cluster has no head node yet: call add_node() first")
        return self.head_node.address

    def add_node(self, wait: bool = True, **node_args: Any) -> ClusterNode:
        """Start a node (the head, if it is the first) with ``num_cpus``, ``num_gpus``,
        ``resources``, ``labels``, ``object_store_memory``, ``_system_config`` and, for the
        head, ``storage`` (where the gcs keeps its tables: memory://, sqlite:///..., redis://...)
        and ``include_dashboard``/``dashboard_port`` (its HTTP service)."""
        own = node_args.pop("_system_config", None) or {}
        if self.head_node is None:
            self._system_config = dict(own)
        config = Config.from_env().with_system_config({**self._system_config, **own})
        offered = node_resources(
            node_args.pop("num_cpus", None),
            node_args.pop("num_gpus", None),
            node_args.pop("resources", None),
            node_args.pop("object_store_memory", None),
            head=self.head_node is None,
        )
        memory = node_args.pop("memory", None)
        if memory is not None:  # the node's "memory" resource, in bytes, as in Ray
            offered = {**offered, "memory": float(memory)}
        labels = dict(node_args.pop("labels", None) or {})
        storage = node_args.pop("storage", "memory://")
        dashboard_port = node_args.pop("dashboard_port", None)
        dashboard = ("127.0.0.1", dashboard_port or 0) if node_args.pop("include_dashboard", False) else None
        for ignored in (
            "node_name",
            "min_worker_port",
            "max_worker_port",
            # Manta always rebuilds lost objects from lineage; Ray makes it a switch.
            "enable_object_reconstruction",
        ):
            node_args.pop(ignored, None)
        if node_args:
            raise TypeError(f"add_node() got unexpected arguments: {sorted(node_args)}")
        processes = LocalCluster(config)
        if self.head_node is None:
            session = processes.start(resources=offered, labels=labels, storage=storage, dashboard=dashboard)
            self._token = session.token
            node = self.head_node = ClusterNode(processes, head=True)
            self._advertise(node.address)
        else:
            processes.start(resources=offered, labels=labels, join=self._head_address(), token=self._token)
            node = ClusterNode(processes, head=False)
            self.worker_nodes.append(node)
        if wait:
            self._wait_until(lambda alive: node.node_id in alive, 30.0, f"node {node.node_id[:12]} to join")
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop ``node`` (SIGTERM, or SIGKILL with ``allow_graceful=False``)."""
        if allow_graceful:
            node.stop()
        else:
            node.kill()
        if node is self.head_node:
            self.head_node = None
            self._withdraw()
        elif node in self.worker_nodes:
            self.worker_nodes.remove(node)

    def list_all_nodes(self) -> list[ClusterNode]:
        return ([self.head_node] if self.head_node is not None else []) + list(self.worker_nodes)

    def wait_for_nodes(self, timeout: float = 30.0) -> None:
        """Wait until the gcs sees exactly this cluster's nodes alive."""
        wanted = {n.node_id for n in self.list_all_nodes()}
        self._wait_until(lambda alive: alive == wanted, timeout, f"the gcs to see nodes {sorted(wanted)}")

    def connect(self, namespace: str | None = None, **init_args: Any) -> Any:
        result = context.init(address=self._head_address(), namespace=namespace, **init_args)
        self._connected = True
        return result

    def shutdown(self) -> None:
        """Disconnect, and stop every node even if that, or another node's stop, fails
        (the first error is raised after)."""
        with contextlib.ExitStack() as stops:
            for node in self.list_all_nodes():  # stopped last to first
                stops.callback(node.stop)
            stops.callback(self._withdraw)
            if self._connected:
                self._connected = False
                context.shutdown()
        self.worker_nodes.clear()
        self.head_node = None

    def _advertise(self, address: str) -> None:
        self._advertised = address
        self._address_env_before = os.environ.get(_ADDRESS_ENV)
        os.environ[_ADDRESS_ENV] = address

    def _withdraw(self) -> None:
        """Undo ``_advertise``, unless the variable was pointed elsewhere since."""
        if self._advertised is not None and os.environ.get(_ADDRESS_ENV) == self._advertised:
            if self._address_env_before is None:
                del os.environ[_ADDRESS_ENV]
            else:
                os.environ[_ADDRESS_ENV] = self._address_env_before
        self._advertised = None

    def alive_node_ids(self) -> set[str]:
        with GcsClient(self._head_address(), self._token) as gcs:
            states: list[m.NodeState] = gcs.call(m.GetNodes())
        return {s.info.node_id.hex() for s in states if s.alive}

    def _wait_until(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            alive = self.alive_node_ids()
            if done(alive):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {what}; alive: {sorted(alive)}"
                )
            time.sleep(0.05)
