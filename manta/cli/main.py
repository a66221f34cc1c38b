"""``manta``: start, stop and inspect Manta clusters from the shell."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import click

from manta._private.common.version import __version__


@click.group()
@click.version_option(__version__, prog_name="manta")
def cli() -> None:
    """Manta: Ray's programming model, fast to start and secure by default."""


@cli.command()
@click.option("--head", is_flag=True, required=True, help="Start the head node (gcs + node daemon).")
@click.option("--num-cpus", type=float, default=None, help="CPUs of this node (default: all cores).")
@click.option("--num-gpus", type=float, default=None, help="GPUs of this node (default: detected).")
@click.option("--resources", default=None, help="Custom resources as JSON, e.g. '{\"disk\": 2}'.")
@click.option("--object-store-memory", type=int, default=None, help="Object store size in bytes.")
@click.option("--block", is_flag=True, help="Stay in the foreground; Ctrl-C stops the cluster.")
def start(
    head: bool,
    num_cpus: float | None,
    num_gpus: float | None,
    resources: str | None,
    object_store_memory: int | None,
    block: bool,
) -> None:
    """Start a Manta cluster on this host that drivers join with init(address="auto")."""
    from manta._private.api.discovery import current_cluster
    from manta._private.api.local_cluster import ClusterStartError, LocalCluster
    from manta._private.api.node_resources import node_resources
    from manta._private.common.config import Config
    from manta._private.common.session import remove_socket_dir

    custom = _parse_resources(resources)
    try:
        offered = node_resources(num_cpus, num_gpus, custom, object_store_memory)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None
    current = current_cluster()
    if current is not None and _cluster_alive(current):
        raise click.ClickException(
            f"a Manta cluster is already running on this host (session {current}); stop it with `manta stop`"
        )
    config = Config.from_env()
    cluster = LocalCluster(config, detached=True)
    try:
        cluster.start(resources=offered, labels={})
    except ClusterStartError as e:
        raise click.ClickException(str(e)) from None
    _write_current(config, cluster.session_dir)
    click.echo(f"Started a Manta head node; session directory {cluster.session_dir}")
    click.echo(f"  gcs address: {cluster.info['gcs_address']}")
    click.echo('  Connect a driver on this host with:  manta.init(address="auto")')
    click.echo(f"  The cluster token is in {os.path.join(cluster.session_dir, 'token')} (mode 0600).")
    click.echo("  Stop the cluster with:  manta stop")
    if block:
        try:
            while all(p.poll() is None for p in cluster.procs.values()):
                time.sleep(0.5)
            click.echo("a Manta daemon exited; stopping the cluster", err=True)
        except KeyboardInterrupt:
            pass
        cluster.stop()
        _clear_current(config, cluster.session_dir)
        remove_socket_dir(cluster.session_dir)


@cli.command()
@click.option("--grace-period", type=float, default=5.0, help="Seconds to wait before SIGKILL.")
def stop(grace_period: float) -> None:
    """Stop the Manta cluster started on this host with `manta start`."""
    from manta._private.api.discovery import current_cluster
    from manta._private.common.config import Config
    from manta._private.common.session import remove_socket_dir

    config = Config.from_env()
    session_dir = current_cluster()
    if session_dir is None:
        click.echo("no Manta cluster started with `manta start` is running on this host")
        return
    pids = _pids(session_dir)
    for name in ("node", "gcs"):
        pid = pids.get(name)
        if pid is not None:
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_period
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.1)
    for pid in pids.values():
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    _clear_current(config, session_dir)
    remove_socket_dir(session_dir)
    click.echo(f"stopped the Manta cluster of {session_dir} ({len(pids)} daemons)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def memory(as_json: bool) -> None:
    """List every object: size, owner, where it lives and why it is still alive."""
    import asyncio
    import dataclasses

    from manta._private.api import memory as mem
    from manta._private.api.gcs_client import GcsClient
    from manta._private.common.config import Config
    from manta._private.common.session import read_token
    from manta._private.rpc import messages as m

    session_dir, info = _running_cluster()
    with GcsClient.for_session(session_dir, "unix:" + info["gcs_unix"]) as gcs:
        states = gcs.call(m.GetNodes())
    reports = asyncio.run(mem.gather_reports(states, read_token(session_dir), Config.from_env()))
    nodes = mem.summarize(reports)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(n) for n in nodes], indent=2))
    else:
        click.echo(mem.render(nodes))


def _running_cluster() -> tuple[str, dict[str, Any]]:
    from manta._private.api.discovery import current_cluster

    session_dir = current_cluster()
    if session_dir is None or not _cluster_alive(session_dir):
        raise click.ClickException(
            "no Manta cluster is running on this host (start one with `manta start --head`)"
        )
    with open(os.path.join(session_dir, "address.json")) as f:
        return session_dir, json.load(f)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Show nodes, resource usage and pending demand of the cluster on this host."""
    from manta._private.api.gcs_client import GcsClient
    from manta._private.rpc import messages as m

    session_dir, info = _running_cluster()
    with GcsClient.for_session(session_dir, "unix:" + info["gcs_unix"]) as gcs:
        states: list[m.NodeState] = gcs.call(m.GetNodes())
    report = _status_report(states)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(f"======== Manta cluster status ({session_dir}) ========")
    for node in report["nodes"]:
        state = "alive" if node["alive"] else f"DEAD ({node['death_reason']})"
        click.echo(f"node {node['node_id'][:12]} {node['address']} {state}")
        for name in sorted(node["total"]):
            if name.startswith("node:"):
                continue
            total = node["total"][name]
            used = total - node["available"].get(name, 0.0)
            click.echo(f"  {_amount(name, used)}/{_amount(name, total)} {name}")
    click.echo("Pending demand:")
    for shape, count in report["pending"].items():
        click.echo(f"  {shape}: {count} waiting")
    if not report["pending"]:
        click.echo("  (none)")
    click.echo("Infeasible (fits no node):")
    for shape, count in report["infeasible"].items():
        click.echo(f"  {shape}: {count} waiting")
    if not report["infeasible"]:
        click.echo("  (none)")


def _status_report(states: list[Any]) -> dict[str, Any]:
    nodes = []
    pending: dict[str, int] = {}
    infeasible: dict[str, int] = {}
    for state in states:
        nodes.append(
            {
                "node_id": state.info.node_id.hex(),
                "address": f"{state.info.host}:{state.info.port}",
                "alive": state.alive,
                "death_reason": state.death_reason,
                "total": dict(state.info.resources),
                "available": dict(state.available),
            }
        )
        for shape in state.pending:
            key = json.dumps(shape, sort_keys=True)
            pending[key] = pending.get(key, 0) + 1
        for shape in state.infeasible:
            key = json.dumps(shape, sort_keys=True)
            infeasible[key] = infeasible.get(key, 0) + 1
    return {"nodes": nodes, "pending": pending, "infeasible": infeasible}


def _amount(name: str, value: float) -> str:
    if name in ("memory", "object_store_memory"):
        return f"{value / 2**30:.2f}GiB"
    return f"{value:g}"


def _parse_resources(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"--resources must be JSON, e.g. '{{\"disk\": 2}}': {e}") from None
    if not isinstance(value, dict):
        raise click.BadParameter("--resources must be a JSON object of resource name to amount")
    return value


def _write_current(config: Any, session_dir: str) -> None:
    from manta._private.api.discovery import CURRENT_CLUSTER_FILE

    path = os.path.join(config.tmpdir, CURRENT_CLUSTER_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(session_dir)
    os.replace(tmp, path)


def _clear_current(config: Any, session_dir: str) -> None:
    from manta._private.api.discovery import CURRENT_CLUSTER_FILE

    path = os.path.join(config.tmpdir, CURRENT_CLUSTER_FILE)
    try:
        with open(path) as f:
            if f.read().strip() == session_dir:
                os.unlink(path)
    except OSError:
        pass


def _pids(session_dir: str) -> dict[str, int]:
    try:
        with open(os.path.join(session_dir, "address.json")) as f:
            return {k: int(v) for k, v in json.load(f).get("pids", {}).items()}
    except (OSError, ValueError):
        return {}


def _cluster_alive(session_dir: str) -> bool:
    pids = _pids(session_dir)
    return bool(pids) and all(_alive(p) and _is_manta(p) for p in pids.values())


def _is_manta(pid: int) -> bool:
    """Whether ``pid`` still runs a Manta daemon (not a stranger that reused the pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"manta._private" in f.read()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _signal(pid: int, sig: int) -> None:
    if not _is_manta(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main() -> None:
    cli(prog_name="manta")


if __name__ == "__main__":
    main()
