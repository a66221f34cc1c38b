"""``ray._private.test_utils``: what Ray's tests import from it. The common helpers are
``ray._common.test_utils``'s (older Ray versions kept ``SignalActor`` and
``wait_for_condition`` here, and tests still import them from here); the rest are the
ones that make sense on Manta: drivers in subprocesses, process and placement-group
checks, and node lists of a ``cluster_utils.Cluster``.
"""

from __future__ import annotations

import dataclasses
import queue
import subprocess
import time
from collections.abc import Callable
from typing import Any

import psutil

import manta
from manta.compat.ray_common.test_utils import (
    DEFAULT_DRIVER_TIMEOUT_SECONDS,
    DRIVER_COMMAND,
    Semaphore,
    SignalActor,
    _communicate,
    async_wait_for_condition,
    run_string_as_driver,
    wait_for_condition,
)
from manta.compat.ray_private.worker import global_worker

__all__ = [
    "DEFAULT_DRIVER_TIMEOUT_SECONDS",
    "MetricSamplePattern",
    "Semaphore",
    "SignalActor",
    "async_wait_for_condition",
    "client_test_enabled",
    "convert_actor_state",
    "generate_system_config_map",
    "get_error_message",
    "get_metric_check_condition",
    "get_non_head_nodes",
    "get_other_nodes",
    "init_error_pubsub",
    "is_placement_group_removed",
    "kill_actor_and_wait_for_failure",
    "object_memory_usage",
    "placement_group_assert_no_leak",
    "put_object",
    "run_string_as_driver",
    "run_string_as_driver_nonblocking",
    "run_string_as_driver_stdout_stderr",
    "wait_for_assertion",
    "wait_for_condition",
    "wait_for_pid_to_exit",
]


def run_string_as_driver_stdout_stderr(
    driver_script: str,
    env: dict[str, str] | None = None,
    encode: str = "utf-8",
    timeout: float | None = DEFAULT_DRIVER_TIMEOUT_SECONDS,
) -> tuple[str, str]:
    """``run_string_as_driver``, with stdout and stderr apart."""
    with subprocess.Popen(
        DRIVER_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        out_bytes, err_bytes = _communicate(proc, driver_script.encode(encode), timeout, encode)
        out, err = out_bytes.decode(encode), err_bytes.decode(encode)
        if proc.returncode:
            print(out)
            print(err)
            raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return out, err


def run_string_as_driver_nonblocking(driver_script: str, env: dict[str, str] | None = None) -> Any:
    """Start ``driver_script`` in a new Python process and return its ``Popen`` at once
    (stdout and stderr are pipes; the caller waits for and reads them)."""
    proc = subprocess.Popen(
        DRIVER_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(driver_script.encode("ascii"))
    proc.stdin.close()
    return proc


def wait_for_pid_to_exit(pid: int, timeout: float = 20) -> None:
    """Raises TimeoutError if process ``pid`` still runs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    raise TimeoutError(f"Timed out while waiting for process {pid} to exit.")


def _pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_assertion(
    assertion_predictor: Callable[..., Any],
    timeout: float = 10,
    retry_interval_ms: float = 100,
    raise_exceptions: bool = False,
    **kwargs: Any,
) -> None:
    """Call ``assertion_predictor(**kwargs)`` until it stops raising AssertionError; after
    ``timeout`` seconds, call it once more so that its AssertionError reaches the caller."""

    def holds() -> bool:
        try:
            assertion_predictor(**kwargs)
        except AssertionError:
            return False
        return True

    try:
        wait_for_condition(
            holds, timeout=timeout, retry_interval_ms=retry_interval_ms, raise_exceptions=raise_exceptions
        )
    except RuntimeError:
        assertion_predictor(**kwargs)


def client_test_enabled() -> bool:
    """Whether tests run through Ray Client: never, Manta has none."""
    return False


def is_placement_group_removed(pg: Any) -> bool:
    table = manta.util.placement_group_table(pg)
    return bool(table.get("state") == "REMOVED")


def placement_group_assert_no_leak(pgs_created: list[Any]) -> None:
    """Remove the given placement groups, then wait until every group is removed and
    the cluster's resources are all available again (no bundle resources left)."""
    for pg in pgs_created:
        manta.util.remove_placement_group(pg)

    def all_removed() -> bool:
        return all(entry["state"] == "REMOVED" for entry in manta.util.placement_group_table().values())

    wait_for_condition(all_removed)
    total = manta.cluster_resources()
    total.pop("memory", None)
    total.pop("object_store_memory", None)

    def all_available() -> bool:
        for name, value in manta.available_resources().items():
            if "_group_" in name or (name in total and total[name] != value):
                return False
        return True

    wait_for_condition(all_available)


def get_other_nodes(cluster: Any, exclude_head: bool = False) -> list[Any]:
    """The nodes of ``cluster`` except the one this process is connected through."""
    own = global_worker.node
    own_id = None if own is None else own.node_id
    return [
        node
        for node in cluster.list_all_nodes()
        if node.node_id != own_id and not (exclude_head and node.head)
    ]


def get_non_head_nodes(cluster: Any) -> list[Any]:
    return [node for node in cluster.list_all_nodes() if not node.head]


# Ray's actor states by their number in its protocol (ActorTableData.ActorState).
_ACTOR_STATES = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD")


def convert_actor_state(state: int | None) -> str | None:
    """The name of an actor state given by its number (None for none)."""
    return _ACTOR_STATES[state] if state else None


def generate_system_config_map(**kwargs: Any) -> dict[str, Any]:
    """``init()`` keywords that pass ``kwargs`` as the ``_system_config``."""
    return {"_system_config": kwargs}


@manta.remote
def _put(obj: Any) -> Any:
    return obj


def put_object(obj: Any, use_ray_put: bool) -> Any:
    """A ref to ``obj``: from ``put``, or as a task's result."""
    return manta.put(obj) if use_ray_put else _put.remote(obj)


def object_memory_usage() -> float:
    """Bytes of object store memory in use in the cluster."""
    total = manta.cluster_resources().get("object_store_memory", 0)
    return total - manta.available_resources().get("object_store_memory", 0)


def kill_actor_and_wait_for_failure(actor: Any, timeout: float = 10, retry_interval_ms: float = 100) -> None:
    """``kill`` the actor, and wait until it is dead or has restarted."""
    from manta._private.api.context import require_initialized
    from manta._private.rpc.messages import GetActorInfo

    worker = require_initialized("killing an actor")
    before = worker.call_gcs(GetActorInfo(actor._actor_id))
    restarts = before.num_restarts if before is not None else 0
    manta.kill(actor)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = worker.call_gcs(GetActorInfo(actor._actor_id))
        if info is None or info.state == "DEAD" or info.num_restarts > restarts:
            return
        time.sleep(retry_interval_ms / 1000)
    raise RuntimeError(f"It took too much time to kill an actor: {actor._actor_id.hex()}")


@dataclasses.dataclass
class MetricSamplePattern:
    """A Prometheus sample to look for: its name, value and some of its labels."""

    name: str | None = None
    value: Any = None
    partial_label_match: dict[str, str] | None = None

    def matches(self, sample: Any) -> bool:
        if self.name is not None and self.name != sample.name:
            return False
        if self.value is not None and self.value != sample.value:
            return False
        labels = self.partial_label_match or {}
        return all(sample.labels.get(k) == v for k, v in labels.items())


def get_metric_check_condition(
    metrics_to_check: list[MetricSamplePattern], export_addr: str | None = None
) -> Callable[[], bool]:
    """A condition (for ``wait_for_condition``) that holds once every pattern matches a
    sample of the cluster's metrics: the gcs's and every node's, read over their RPC
    sockets as the head's ``/metrics`` gathers them (``export_addr`` is Ray's per-node
    Prometheus port, which Manta does not open; it is ignored)."""

    def check() -> bool:
        samples = [sample for family in _cluster_metrics() for sample in family.samples]
        return all(any(p.matches(s) for s in samples) for p in metrics_to_check)

    return check


def _cluster_metrics() -> list[Any]:
    from manta._private.api.context import require_initialized
    from manta._private.api.node_calls import ask_nodes
    from manta._private.common import exposition as ex
    from manta._private.rpc import messages as m

    worker = require_initialized("reading the cluster's metrics")

    async def gather() -> list[str]:
        nodes = await worker.gcs_call(m.GetNodes())
        local = (worker.node_id, worker.node_conn)
        answers = await ask_nodes(nodes, m.GetMetrics(), worker.session.token, worker.config, local)
        return [str(await worker.gcs_call(m.GetMetrics())), *(str(text) for _node, text in answers)]

    return [family for text in worker.io.run(gather(), 30) for family in ex.parse(text)]


class ErrorSubscriber:
    """The errors pushed to this driver's job, one by one (Ray's ``GcsErrorSubscriber``)."""

    def __init__(self) -> None:
        from manta._private.api.context import require_initialized

        self._worker = require_initialized("subscribing to errors")
        self._errors: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker.error_listeners.append(self._errors.put)

    def poll(self, timeout: float | None = None) -> tuple[bytes | None, dict[str, Any] | None]:
        """(job id, {"type", "error_message", "timestamp"}) of the next error, or (None, None)
        if none comes within ``timeout`` seconds."""
        try:
            push = self._errors.get(timeout=timeout)
        except queue.Empty:
            return None, None
        return bytes(push.job_id), {
            "type": push.type,
            "error_message": push.message,
            "timestamp": push.timestamp,
        }

    def close(self) -> None:
        if self._errors.put in self._worker.error_listeners:
            self._worker.error_listeners.remove(self._errors.put)


def init_error_pubsub() -> ErrorSubscriber:
    return ErrorSubscriber()


def get_error_message(
    subscriber: ErrorSubscriber, num: float = 1e6, error_type: str | None = None, timeout: float = 20
) -> list[dict[str, Any]]:
    """Up to ``num`` errors (of ``error_type``, if given) that arrive within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while len(found) < num:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _job, error = subscriber.poll(timeout=left)
        if error is None:
            break
        if error_type is None or error["type"] == error_type:
            found.append(error)
    return found
