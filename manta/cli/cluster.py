"""``manta start``, ``manta stop``, ``manta status``: running a cluster's nodes on hosts.

A head runs the gcs and a node daemon; other hosts join it with ``--address``. Each node
records its session directory (pids, addresses, token) under ``MANTA_TMPDIR``; ``stop``
stops the nodes this host started, by those pids, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import Any

import click

from manta._private.common.session import ADDRESS_FILE, daemon_pids, is_manta_daemon, signal_daemon


@click.command()
@click.option("--head", is_flag=True, help="Start the head node (gcs + node daemon).")
@click.option("--address", default=None, help="Join the cluster whose head is at HOST:PORT.")
@click.option(
    "--port", type=int, default=6379, show_default=True, help="The head's gcs port (0: any free port)."
)
@click.option(
    "--node-ip-address",
    default="127.0.0.1",
    show_default=True,
    help="Address this node listens on and other nodes reach it at (loopback unless you say).",
)
@click.option("--num-cpus", type=float, default=None, help="CPUs of this node (default: all cores).")
@click.option("--num-gpus", type=float, default=None, help="GPUs of this node (default: detected).")
@click.option("--resources", default=None, help="Custom resources as JSON, e.g. '{\"disk\": 2}'.")
@click.option("--labels", default=None, help="Node labels as k=v,k2=v2.")
@click.option("--object-store-memory", type=int, default=None, help="Object store size in bytes.")
@click.option(
    "--storage",
    default="memory://",
    show_default=True,
    help="Where the gcs keeps its tables: memory://, sqlite:///path or redis://host:port (head only).",
)
@click.option(
    "--token-file",
    default=None,
    help="The cluster token: when joining (else $MANTA_AUTH_TOKEN), or a head's own (else a new one).",
)
@click.option(
    "--include-dashboard/--no-include-dashboard",
    default=True,
    show_default=True,
    help="Run the head's HTTP service (jobs API, later the web UI).",
)
@click.option(
    "--dashboard-host",
    default="127.0.0.1",
    show_default=True,
    help="Interface the HTTP service listens on (loopback unless you say; 0.0.0.0 for all).",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the HTTP service (default: 8265, or a free port if that one is taken; 0: any free port).",
)
@click.option(
    "--client-port",
    "--ray-client-server-port",
    "client_port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port remote drivers connect to (manta://HOST:PORT), served with the dashboard "
    "(default: 10001, or a free port if that one is taken; 0: any free port).",
)
@click.option(
    "--tls-ca", default=None, help="The cluster CA's certificate: turns on TLS (else $MANTA_TLS_CA)."
)
@click.option(
    "--tls-cert", default=None, help="This node's certificate, signed by the CA (else $MANTA_TLS_CERT)."
)
@click.option("--tls-key", default=None, help="The key of --tls-cert (else $MANTA_TLS_KEY).")
@click.option(
    "--max-actors-per-job",
    type=click.IntRange(min=0),
    default=None,
    help="Live actors one job may have at once (head only; 0: no limit, the default).",
)
@click.option(
    "--autoscaling-config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Run the autoscaler with this config (YAML, Ray's cluster-config names; head only).",
)
@click.option("--block", is_flag=True, help="Stay in the foreground; Ctrl-C stops this node.")
def start(
    head: bool,
    address: str | None,
    port: int,
    node_ip_address: str,
    num_cpus: float | None,
    num_gpus: float | None,
    resources: str | None,
    labels: str | None,
    object_store_memory: int | None,
    storage: str,
    token_file: str | None,
    include_dashboard: bool,
    dashboard_host: str,
    dashboard_port: int | None,
    client_port: int | None,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_actors_per_job: int | None,
    autoscaling_config: str | None,
    block: bool,
) -> None:
    """Start a Manta node on this host: a new cluster's head, or one that joins a head."""
    from manta._private.api.local_cluster import ClusterStartError, LocalCluster
    from manta._private.common.config import Config

    if head == bool(address):
        raise click.UsageError("give --head to start a cluster, or --address HEAD:PORT to join one")
    if autoscaling_config and not head:
        raise click.UsageError("--autoscaling-config is for the head (--head): its autoscaler runs there")
    offered = _offered(num_cpus, num_gpus, resources, object_store_memory, node_ip_address, head)
    node_labels = _parse_labels(labels)
    token = _node_token(head, token_file)
    if head:
        _check_storage(storage)
    config = _node_config(Config.from_env(), tls_ca, tls_cert, tls_key, max_actors_per_job)
    _warn_if_exposed(config, node_ip_address, dashboard_host if head and include_dashboard else None)
    _refuse_if_running(config.tmpdir)
    cluster = LocalCluster(config, detached=True)
    try:
        cluster.start(
            resources=offered,
            labels=node_labels,
            host=node_ip_address,
            join=address,
            token=token,
            gcs_port=port,
            storage=storage,
            **_services(head, include_dashboard, dashboard_host, dashboard_port, client_port),
        )
        if autoscaling_config:
            cluster.start_autoscaler(autoscaling_config)
    except ClusterStartError as e:
        cluster.stop()
        raise click.ClickException(str(e)) from None
    _write_current(config.tmpdir, cluster.session_dir)
    _explain(cluster, head)
    if block:
        try:
            _supervise(cluster, durable=head and storage not in ("", "memory", "memory://"))
        except KeyboardInterrupt:
            pass
        cluster.stop()
        _clear_current(config.tmpdir, cluster.session_dir)


def _offered(
    num_cpus: float | None,
    num_gpus: float | None,
    resources: str | None,
    object_store_memory: int | None,
    host: str,
    head: bool,
) -> dict[str, float]:
    """The resources the node offers: those given, the rest detected."""
    from manta._private.api.node_resources import node_resources

    custom = _parse_resources(resources)
    try:
        return node_resources(num_cpus, num_gpus, custom, object_store_memory, host=host, head=head)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None


def _node_config(
    config: Any,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_actors_per_job: int | None = None,
) -> Any:
    """The config with the settings given on the command line; TLS files are checked now,
    so a bad one is named here rather than in a daemon's log."""
    from manta._private.rpc import tls

    given = {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}
    config = config.replace(**{k: os.path.abspath(v) for k, v in given.items() if v})
    if max_actors_per_job is not None:
        config = config.replace(max_actors_per_job=max_actors_per_job)
    try:
        tls.load(config)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return config


def _warn_if_exposed(config: Any, node_ip: str, dashboard_host: str | None) -> None:
    """Say so when this node listens beyond loopback with nothing encrypted."""
    if config.tls_ca:
        return
    exposed = [h for h in (node_ip, dashboard_host) if h and not _is_loopback(h)]
    if exposed:
        click.echo(
            f"WARNING: listening on {', '.join(sorted(set(exposed)))} without TLS: tokens and data cross "
            "the network in the clear. Give --tls-ca/--tls-cert/--tls-key (see `manta cert`).",
            err=True,
        )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_if_running(tmpdir: str) -> None:
    running = _started_sessions(tmpdir)
    if running:
        raise click.ClickException(
            f"a Manta node started with `manta start` already runs on this host (session {running[0]}); "
            "stop it with `manta stop`, or use another MANTA_TMPDIR"
        )


def _services(
    head: bool, include_dashboard: bool, host: str, port: int | None, client_port: int | None
) -> dict[str, Any]:
    """The head's HTTP service and client port, as LocalCluster.start takes them."""
    from manta._private.api.context import DEFAULT_CLIENT_PORT, DEFAULT_DASHBOARD_PORT

    if client_port is not None and not include_dashboard:
        raise click.UsageError(
            "the client port is served by the head's HTTP service: drop --no-include-dashboard"
        )
    if not (head and include_dashboard):
        return {}
    # A negative port asks for that port if free, else any (the defaults' behaviour).
    return {
        "dashboard": (host, -DEFAULT_DASHBOARD_PORT if port is None else port),
        "client_port": -DEFAULT_CLIENT_PORT if client_port is None else client_port,
    }


def _supervise(cluster: Any, durable: bool) -> None:
    """Stay in the foreground until a daemon exits. A gcs with durable storage that exits
    is started again (its tables reload; nodes and drivers reconnect); any other exit ends
    this node."""
    from manta._private.api.local_cluster import ClusterStartError

    while True:
        time.sleep(0.5)
        gcs = cluster.procs.get("gcs")
        if durable and gcs is not None and gcs.poll() is not None and cluster.procs["node"].poll() is None:
            click.echo(
                f"the gcs exited (code {gcs.returncode}); starting it again from its storage", err=True
            )
            try:
                cluster.restart("gcs")
                continue
            except ClusterStartError as e:
                click.echo(str(e), err=True)
        if any(p.poll() is not None for p in cluster.procs.values()):
            click.echo("a Manta daemon exited; stopping this node", err=True)
            return


def _explain(cluster: Any, head: bool) -> None:
    info = cluster.info
    token_path = os.path.join(cluster.session_dir, "token")
    if head:
        click.echo(f"Started a Manta head node; session directory {cluster.session_dir}")
        click.echo(f"  Cluster address: {info['gcs_address']}")
        click.echo("  To add a node on another host, copy the token file there and run:")
        click.echo(f"      MANTA_AUTH_TOKEN=$(cat token) manta start --address {info['gcs_address']}")
        click.echo(
            f"  The cluster token is in {token_path} (mode 0600): it grants full control, keep it secret."
        )
        click.echo("  Give others narrower tokens with:  manta token create --role read|submit")
        if info.get("dashboard_url"):
            url = ("https://" if cluster.config.tls_ca else "http://") + info["dashboard_url"]
            click.echo(f"  Dashboard: open {url} and log in with the token (or one made for you)")
            click.echo(f"  Submit jobs with:  MANTA_ADDRESS={url} manta job submit -- python script.py")
        if info.get("client_address"):
            click.echo(f'  Remote drivers:  manta.init("{info["client_address"]}") with MANTA_AUTH_TOKEN set')
        if cluster.config.tls_ca:
            click.echo(
                "  TLS is on: nodes, drivers and clients need MANTA_TLS_CA/CERT/KEY (see `manta cert`)."
            )
    else:
        click.echo(
            f"Joined the Manta cluster at {info['gcs_address']}; session directory {cluster.session_dir}"
        )
        click.echo(f"  This node: {info['node_id'][:12]} at {info['host']}")
    click.echo('  Drivers on this host connect with:  manta.init(address="auto")')
    click.echo("  Stop this host's node with:  manta stop")


# Tokens made by Manta have 64 (hex) characters; one given to a head must not be weaker
# than a guess-proof secret.
MIN_TOKEN_CHARS = 32


def _join_token(token_file: str | None) -> bytes:
    if token_file:
        try:
            with open(token_file, "rb") as f:
                token = f.read().strip()
        except OSError as e:
            raise click.BadParameter(f"cannot read the token file: {e}", param_hint="--token-file") from None
    else:
        token = os.environ.get("MANTA_AUTH_TOKEN", "").strip().encode()
    if not token:
        raise click.UsageError(
            "joining a cluster needs its token: set MANTA_AUTH_TOKEN to the contents of the head's "
            "token file (its path is printed by `manta start --head`), or pass --token-file"
        )
    return token


def _node_token(head: bool, token_file: str | None) -> bytes | None:
    """The token to join with; a head's own when given a file (a deployment's Secret),
    else None (the head makes a new one)."""
    if not head:
        return _join_token(token_file)
    if token_file is None:
        return None
    token = _join_token(token_file)
    if len(token) < MIN_TOKEN_CHARS:
        raise click.BadParameter(
            f"a cluster token has {MIN_TOKEN_CHARS} characters or more; make one with "
            "python -c 'import secrets; print(secrets.token_hex(32))'",
            param_hint="--token-file",
        )
    return token


def _check_storage(url: str) -> None:
    from manta._private.gcs.storage import open_storage

    try:
        open_storage(url).close()
    except (ValueError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="--storage") from None


@click.command()
@click.option("--grace-period", type=float, default=5.0, help="Seconds to wait before SIGKILL.")
def stop(grace_period: float) -> None:
    """Stop the Manta nodes started on this host with `manta start`."""
    from manta._private.common.config import Config
    from manta._private.common.session import AUTOSCALER_STOP_S, DAEMONS_IN_STOP_ORDER, remove_socket_dir

    config = Config.from_env()
    sessions = _started_sessions(config.tmpdir)
    if not sessions:
        click.echo("no Manta node started with `manta start` is running on this host")
        return
    for session_dir in sessions:
        pids = daemon_pids(session_dir)
        if "autoscaler" in pids:  # first, and waited for: it stops the nodes it launched here
            signal_daemon(pids["autoscaler"], signal.SIGTERM)
            deadline = time.monotonic() + AUTOSCALER_STOP_S
            while time.monotonic() < deadline and _alive(pids["autoscaler"]):
                time.sleep(0.1)
        for name in DAEMONS_IN_STOP_ORDER:
            if name in pids:
                signal_daemon(pids[name], signal.SIGTERM)
        deadline = time.monotonic() + grace_period
        while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
            time.sleep(0.1)
        for pid in pids.values():
            if _alive(pid):
                signal_daemon(pid, signal.SIGKILL)
        _clear_current(config.tmpdir, session_dir)
        remove_socket_dir(session_dir)
        _remove_arena(session_dir, pids)
        click.echo(f"stopped the Manta node of {session_dir} ({len(pids)} daemons)")


@click.command()
@click.option(
    "--address",
    default=None,
    help="The cluster's HOST:PORT (default: $MANTA_ADDRESS, else the newest cluster on this host).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(address: str | None, as_json: bool) -> None:
    """Show nodes, resource usage and pending demand of a cluster."""
    from manta._private.autoscaler.monitor import STATUS_KEY
    from manta._private.autoscaler.resource_request import NAMESPACE
    from manta._private.rpc import messages as m

    with cluster_gcs(address) as gcs:
        states: list[m.NodeState] = gcs.call(m.GetNodes())
        groups: list[m.PlacementGroupInfo] = gcs.call(m.ListPlacementGroups())
        autoscaler = gcs.call(m.KvGet(NAMESPACE, STATUS_KEY))  # written by its every round
    report = status_report(states, groups)
    report["autoscaler"] = _autoscaler_status(autoscaler)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo("======== Manta cluster status ========")
    for node in report["nodes"]:
        state = "alive" if node["alive"] else f"DEAD ({node['death_reason']})"
        role = " (head)" if node["head"] else ""
        click.echo(f"node {node['node_id'][:12]}{role} {node['address']} {state}")
        for name in sorted(node["total"]):
            if name.startswith("node:"):
                continue
            total = node["total"][name]
            used = total - node["available"].get(name, 0.0)
            click.echo(f"  {_amount(name, used)}/{_amount(name, total)} {name}")
    for title, key in (("Pending demand:", "pending"), ("Infeasible (fits no node):", "infeasible")):
        click.echo(title)
        for shape, count in report[key].items():
            click.echo(f"  {shape}: {count} waiting")
        if not report[key]:
            click.echo("  (none)")
    click.echo("Placement groups:")
    for group in report["placement_groups"]:
        line = f"  {group['id'][:12]} {group['name'] or '-'} {group['strategy']} {group['state']} {group['bundles']}"
        click.echo(line + (f" -- {group['waiting_because']}" if group["waiting_because"] else ""))
    if not report["placement_groups"]:
        click.echo("  (none)")
    if report["autoscaler"] is not None:
        _echo_autoscaler(report["autoscaler"])


def _autoscaler_status(raw: bytes | None) -> dict[str, Any] | None:
    """The autoscaler's latest round as it wrote it (None without an autoscaler); what does
    not read as one (written there by hand) is said to be so."""
    if not raw:
        return None
    keys = ("time", "nodes", "launching", "reasons", "unplaceable", "errors", "terminated")
    try:
        status = json.loads(raw)
        if isinstance(status, dict) and all(k in status for k in keys):
            return status
    except ValueError:
        pass
    return {"time": 0.0, **{k: [] for k in keys[1:]}, "errors": ["its status record is unreadable"]}


def _echo_autoscaler(status: dict[str, Any]) -> None:
    """What the autoscaler did in its latest round, and why."""
    click.echo(f"Autoscaler (as of {time.strftime('%H:%M:%S', time.localtime(status['time']))}):")
    click.echo(f"  nodes it launched: {', '.join(status['nodes']) or '(none)'}")
    click.echo(f"  launching: {', '.join(status['launching']) or '(none)'}")
    for title, key in (
        ("", "reasons"),
        ("", "unplaceable"),
        ("error: ", "errors"),
        ("terminated ", "terminated"),
    ):
        for line in status[key]:
            click.echo(f"  {title}{line}")


def cluster_gcs(address: str | None) -> Any:
    """A gcs client for the cluster at ``address``, or the one this host's node belongs to."""
    from manta._private.api.context import is_remote
    from manta._private.api.gcs_client import GcsClient
    from manta._private.common.session import gcs_address_of, read_token

    if is_remote(address):
        return _RemoteGcs(str(address))
    token = os.environ.get("MANTA_AUTH_TOKEN", "").strip().encode()
    if address is None or not token:  # this host's node knows where the gcs is, and the token
        session_dir, info = running_session(address)
        if address is None:
            address = gcs_address_of(info)
        token = token or read_token(session_dir)
    try:
        return GcsClient(address, token)
    except Exception as e:
        raise click.ClickException(f"cannot reach the cluster's gcs at {address}: {e}") from None


class _RemoteGcs:
    """The gcs of a cluster reached at its head's client port (``manta://HOST:PORT``): asked
    through a remote driver's session there, with $MANTA_AUTH_TOKEN."""

    def __init__(self, address: str) -> None:
        import manta

        try:
            manta.init(address, configure_logging=False, log_to_driver=False)
        except Exception as e:
            raise click.ClickException(f"cannot reach the cluster at {address}: {e}") from None
        self._manta = manta

    def call(self, msg: Any) -> Any:
        from manta._private.api.context import current_worker

        return current_worker().call_gcs(msg)  # type: ignore[union-attr]

    def __enter__(self) -> _RemoteGcs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._manta.shutdown()


def running_session(address: str | None = None) -> tuple[str, dict[str, Any]]:
    """The session directory (where the token is) and address file of the cluster at
    ``address``, else of $MANTA_ADDRESS's, else of the newest running on this host: one
    `manta start` began or a driver's private one, as `ray status` finds a `ray.init()`."""
    from manta._private.api.discovery import latest_cluster, session_for
    from manta._private.common.config import Config

    config = Config.from_env()
    address = address or config.address
    try:
        session_dir = session_for(address, config) if address else latest_cluster(config)
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    if session_dir is None or not _cluster_alive(session_dir):
        raise click.ClickException(
            "no Manta cluster is running on this host (start one with `manta start --head` or manta.init())"
        )
    with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
        return session_dir, json.load(f)


def status_report(states: list[Any], groups: tuple[Any, ...] | list[Any] = ()) -> dict[str, Any]:
    nodes = []
    pending: dict[str, int] = {}
    infeasible: dict[str, int] = {}
    for state in states:
        nodes.append(
            {
                "node_id": state.info.node_id.hex(),
                "address": f"{state.info.host}:{state.info.port}",
                "head": state.info.is_head,
                "alive": state.alive,
                "death_reason": state.death_reason,
                "total": dict(state.total or state.info.resources),
                "available": dict(state.available),
                "labels": dict(state.info.labels),
            }
        )
        if not state.alive:
            continue
        for shapes, into in ((state.pending, pending), (state.infeasible, infeasible)):
            for shape in shapes:
                key = json.dumps(shape, sort_keys=True)
                into[key] = into.get(key, 0) + 1
    placement_groups = [
        {
            "id": g.pg_id.hex(),
            "name": g.name,
            "strategy": g.strategy,
            "state": g.state,
            "bundles": [dict(b) for b in g.bundles],
            "nodes": list(g.nodes),
            "waiting_because": g.message,
        }
        for g in groups
        if g.state != "REMOVED"
    ]
    for g in placement_groups:
        if g["state"] in ("PENDING", "RESCHEDULING"):  # groups waiting are demand too
            key = json.dumps({"placement_group": g["bundles"], "strategy": g["strategy"]}, sort_keys=True)
            pending[key] = pending.get(key, 0) + 1
    return {
        "nodes": nodes,
        "pending": pending,
        "infeasible": infeasible,
        "placement_groups": placement_groups,
    }


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


def _parse_labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"labels are k=v pairs separated by commas, got {item!r}", param_hint="--labels"
            )
        labels[key.strip()] = value.strip()
    return labels


def _write_current(tmpdir: str, session_dir: str) -> None:
    from manta._private.api.discovery import CURRENT_CLUSTER_FILE

    path = os.path.join(tmpdir, CURRENT_CLUSTER_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(session_dir)
    os.replace(tmp, path)


def _clear_current(tmpdir: str, session_dir: str) -> None:
    from manta._private.api.discovery import CURRENT_CLUSTER_FILE

    path = os.path.join(tmpdir, CURRENT_CLUSTER_FILE)
    try:
        with open(path) as f:
            if f.read().strip() == session_dir:
                os.unlink(path)
    except OSError:
        pass


def _started_sessions(tmpdir: str) -> list[str]:
    """Session directories of nodes `manta start` started here whose daemons still run."""
    try:
        names = sorted(os.listdir(tmpdir), reverse=True)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(tmpdir, name)
        try:
            with open(os.path.join(path, ADDRESS_FILE)) as f:
                detached = bool(json.load(f).get("detached"))
        except (OSError, ValueError):
            continue
        if detached and any(_alive(p) and is_manta_daemon(p) for p in daemon_pids(path).values()):
            found.append(path)
    return found


def _remove_arena(session_dir: str, pids: dict[str, int]) -> None:
    """A node daemon removes its shared-memory arena when it exits; one that was killed
    (or had crashed) leaves it behind, for whoever stops the node to free."""
    try:
        with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
            arena = json.load(f).get("arena_path")
    except (OSError, ValueError):
        return
    node = pids.get("node")
    if arena and (node is None or not _alive(node)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(arena)


def _cluster_alive(session_dir: str) -> bool:
    pids = daemon_pids(session_dir)
    return bool(pids) and all(_alive(p) and is_manta_daemon(p) for p in pids.values())


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
