"""Roles decided by the server, on a real cluster: tokens issued, rotated and revoked over
HTTP; each role refused what it may not do over HTTP and RPC; the audit log records who
did what; and every listening socket of every Manta process (head, worker node, driver,
workers, a job's driver) refuses a client without credentials and a read token that
tries to run code."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from manta._private.common.aio import new_event_loop
from manta._private.common.ids import JobID
from manta._private.common.session import ADDRESS_FILE
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect
from manta._private.rpc.messages import access as a
from manta._private.rpc.transport import ConnectionLost, Dispatcher
from manta.cluster_utils import Cluster
from manta.exceptions import AuthenticationError, PermissionDeniedError
from tests.http_api import request
from tests.polling import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("jobs_cwd"))
    # A low request rate per token (bursts of 50), so test_a_flooding_token_is_slowed_alone
    # can exceed it quickly; every other test stays well below.
    rate_before = os.environ.get("MANTA_HTTP_REQUESTS_PER_S")
    os.environ["MANTA_HTTP_REQUESTS_PER_S"] = "25"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True})
    try:
        c.add_node(num_cpus=1)
        c.connect()
        head = c.head_node
        assert head is not None and head.dashboard_url
        token = Path(head.session_dir, "token").read_text().strip()
        yield {
            "url": "http://" + head.dashboard_url,
            "token": token,
            "gcs": head.address,
            "session_dir": head.session_dir,
            "cluster": c,
        }
    finally:
        c.shutdown()
        os.chdir(here)
        if rate_before is None:
            del os.environ["MANTA_HTTP_REQUESTS_PER_S"]
        else:
            os.environ["MANTA_HTTP_REQUESTS_PER_S"] = rate_before


def issue(head: dict[str, Any], role: str, name: str, token: str = "default") -> str:
    status, body = request(head, "POST", "/api/tokens", {"role": role, "name": name}, token=token)
    assert status == 200, body
    assert body["role"] == role and body["name"] == name and body["active"]
    return str(body["token"])


def audit_events(head: dict[str, Any], event: str) -> list[dict[str, Any]]:
    status, events = request(head, "GET", "/api/audit?limit=10000")
    assert status == 200, events
    return [e for e in events if e["event"] == event]


def rpc(address: str, token: bytes, msg: Any = None, kind: str = "cli") -> Any:
    """Connect with ``token`` and send ``msg`` (or only connect); the reply."""
    loop = new_event_loop()

    async def go() -> Any:
        conn = await connect(address, token, Dispatcher(), kind=kind, max_frame_bytes=1 << 20, timeout=10)
        try:
            return None if msg is None else await asyncio.wait_for(conn.call(msg), 10)
        finally:
            conn.close()

    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def test_each_role_gets_what_it_may_do_over_http(cluster) -> None:
    reader = issue(cluster, "read", "http-viewer")
    submitter = issue(cluster, "submit", "http-scientist")
    # Read: look, never change.
    assert request(cluster, "GET", "/api/jobs/", token=reader)[0] == 200
    status, body = request(cluster, "POST", "/api/jobs/", {"entrypoint": "true"}, token=reader)
    assert status == 403 and "needs the 'submit' role; your token has 'read'" in body["error"]
    assert request(cluster, "POST", "/api/tokens", {"role": "admin"}, token=reader)[0] == 403
    assert request(cluster, "GET", "/api/audit", token=reader)[0] == 403
    # Submit: run jobs, but neither manage tokens nor read the audit log.
    status, body = request(cluster, "POST", "/api/jobs/", {"entrypoint": "echo hi"}, token=submitter)
    assert status == 200, body
    assert request(cluster, "GET", "/api/tokens", token=submitter)[0] == 403
    assert request(cluster, "DELETE", "/api/tokens/http-viewer", token=submitter)[0] == 403
    # The submission is in the audit log, under the token's name and role.
    [submitted] = [
        e for e in audit_events(cluster, "job_submit") if e["submission_id"] == body["submission_id"]
    ]
    assert submitted["by"] == "http-scientist" and submitted["role"] == "submit"
    assert submitted["entrypoint"] == "echo hi"
    # The listing never shows a token's text.
    status, listed = request(cluster, "GET", "/api/tokens")
    assert status == 200 and {"http-viewer", "http-scientist"} <= {t["name"] for t in listed}
    assert all("token" not in t and "digest" not in t for t in listed)
    assert reader not in str(listed)


def test_an_admin_token_manages_tokens_and_revocation_takes_effect(cluster) -> None:
    admin = issue(cluster, "admin", "ops")
    doomed = issue(cluster, "read", "doomed", token=admin)
    assert request(cluster, "GET", "/api/version", token=doomed)[0] == 200
    assert rpc(cluster["gcs"], doomed.encode(), m.Ping()) is None
    status, body = request(cluster, "DELETE", "/api/tokens/doomed", token=admin)
    assert status == 200 and body["active"] is False
    # Refused over HTTP within the authenticator's one-second cache, and at once over RPC.
    wait_until(lambda: request(cluster, "GET", "/api/version", token=doomed)[0] == 401, 5, "the revocation")
    with pytest.raises(AuthenticationError, match="this user token is not accepted here: it is revoked"):
        rpc(cluster["gcs"], doomed.encode())
    [revoked] = [e for e in audit_events(cluster, "token_revoke") if e["name"] == "doomed"]
    assert revoked["by"] == "ops"
    # Bad requests are 4xx naming the problem.
    status, body = request(cluster, "POST", "/api/tokens", {"role": "cluster"}, token=admin)
    assert status == 400 and "unknown role 'cluster'" in body["error"]
    status, body = request(cluster, "POST", "/api/tokens", {"role": "read", "name": "../x"}, token=admin)
    assert status == 400 and "bad token name" in body["error"]
    for ref in ("nobody", "..%2F..%2Fetc", "%00"):
        status, body = request(cluster, "DELETE", f"/api/tokens/{ref}", token=admin)
        assert status == 404 and "no token has" in body["error"], (ref, body)
    status, body = request(cluster, "GET", "/api/audit?limit=0")
    assert status == 400 and "'limit' must be between 1 and 10000" in body["error"]


def test_rotation_keeps_the_old_token_until_it_retires(cluster) -> None:
    old = issue(cluster, "submit", "ci-bot")
    status, body = request(cluster, "POST", "/api/tokens/ci-bot/rotate", {"retire_after_s": 2})
    assert status == 200 and body["name"] == "ci-bot" and body["role"] == "submit"
    new = body["token"]
    assert request(cluster, "GET", "/api/version", token=old)[0] == 200
    assert request(cluster, "GET", "/api/version", token=new)[0] == 200
    wait_until(
        lambda: request(cluster, "GET", "/api/version", token=old)[0] == 401, 10, "the old token to retire"
    )
    assert request(cluster, "GET", "/api/version", token=new)[0] == 200


def test_user_tokens_over_rpc_get_their_role_not_the_one_they_claim(cluster) -> None:
    reader = issue(cluster, "read", "rpc-viewer").encode()
    gcs = cluster["gcs"]
    # Reading works.
    nodes = rpc(gcs, reader, m.GetNodes())
    assert len([n for n in nodes if n.alive]) == 2
    # Writing, running code, acting as the cluster: refused, with the role named.
    with pytest.raises(
        PermissionDeniedError, match="KvPut needs the 'submit' role; this connection's token has 'read'"
    ):
        rpc(gcs, reader, m.KvPut("ns", b"k", b"v", True))
    with pytest.raises(PermissionDeniedError, match="JobFinished needs the 'cluster' role"):
        rpc(gcs, reader, m.JobFinished(JobID.from_int(1)))
    with pytest.raises(PermissionDeniedError, match="needs the 'admin' role"):
        rpc(gcs, reader, a.IssueToken("admin", "escalate", "x"))
    # Claiming to be a node does not make it one.
    with pytest.raises(PermissionDeniedError, match="cluster's own credential"):
        rpc(gcs, reader, kind="node")
    # A submit token may write the KV (audited under its name).
    submitter = issue(cluster, "submit", "rpc-scientist").encode()
    assert rpc(gcs, submitter, m.KvPut("user-ns", b"key", b"value", True)) is True
    [put] = [e for e in audit_events(cluster, "kv_put") if e["namespace"] == "user-ns"]
    assert put["by"] == "rpc-scientist" and put["role"] == "submit" and put["key"] == "key"


def test_failed_authentication_is_audited(cluster) -> None:
    with pytest.raises(AuthenticationError):
        rpc(cluster["gcs"], b"mt_000000000000_" + b"0" * 64)
    assert request(cluster, "GET", "/api/jobs/", token="nope")[0] == 401
    failures = audit_events(cluster, "auth_failed")
    assert any(e["peer"].startswith(("127.0.0.1", "unix-socket")) for e in failures)
    assert any("/api/jobs/" in e["reason"] for e in failures)
    # Node joins are recorded too.
    assert len(audit_events(cluster, "node_join")) >= 2


def test_a_foreign_host_header_is_refused(cluster) -> None:
    status, body = request(cluster, "GET", "/api/version", headers={"Host": "rebind.attacker.example"})
    assert status == 421 and "MANTA_DASHBOARD_ALLOWED_HOSTS" in body["error"]
    assert request(cluster, "GET", "/api/version", headers={"Host": "localhost"})[0] == 200


JOB = """
import os, time, manta
manta.init()

@manta.remote
class Held:
    def ping(self):
        return os.getpid()

actor = Held.remote()
manta.get(actor.ping.remote())
open(os.environ["READY_FILE"], "w").close()
time.sleep(120)
"""


def _listening(pids: set[int]) -> tuple[set[tuple[str, int]], set[str]]:
    """The TCP addresses and Unix socket paths the processes ``pids`` listen on."""
    tcp: set[tuple[str, int]] = set()
    unix: set[str] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    tcp.add((conn.laddr.ip, conn.laddr.port))
            for conn in proc.net_connections(kind="unix"):
                if conn.laddr and not conn.raddr:
                    unix.add(conn.laddr)
        except psutil.NoSuchProcess:
            continue
    return tcp, unix


def _probe(address: str, read_token: bytes, cluster_token: bytes, gcs: str, dashboard: str) -> str:
    """How the socket at ``address`` treats strangers; raises if it lets one in."""
    try:
        rpc(address, cluster_token)
    except (ConnectionLost, AuthenticationError):
        is_rpc = False
    else:
        is_rpc = True
    if is_rpc:
        with pytest.raises(AuthenticationError):
            rpc(address, b"")
        if address == gcs:
            with pytest.raises(PermissionDeniedError):
                rpc(address, read_token, m.JobFinished(JobID.from_int(1)), kind="driver")
            return "gcs"
        with pytest.raises(AuthenticationError):  # nodes and workers know only the cluster's credential
            rpc(address, read_token, kind="driver")
        return "rpc"
    if address == dashboard:
        head = {"url": "http://" + address, "token": read_token.decode()}
        assert request(head, "GET", "/api/jobs/", token=None)[0] == 401
        assert request(head, "POST", "/api/jobs/", {"entrypoint": "true"})[0] == 403
        return "http"
    # The object-transfer port: it speaks only to a puller with a ticket the node issued.
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(secrets.token_bytes(32))
        sock.settimeout(10)
        assert sock.recv(1) == b"", f"{address} answered a stranger"
    return "transfer"


def test_every_listening_socket_refuses_strangers_and_readers(cluster, tmp_path) -> None:
    submitter = issue(cluster, "submit", "socket-scientist")
    reader = issue(cluster, "read", "socket-viewer").encode()
    ready = tmp_path / "ready"
    status, body = request(
        cluster,
        "POST",
        "/api/jobs/",
        {"entrypoint": f"python -c '{JOB}'", "runtime_env": {"env_vars": {"READY_FILE": str(ready)}}},
        token=submitter,
    )
    assert status == 200, body
    job = body["submission_id"]
    try:
        wait_until(ready.exists, 60, "the job's driver and actor to start")
        pids = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
        tcp, unix = _listening(pids)
        dashboard = cluster["url"].removeprefix("http://")
        kinds: dict[str, int] = {}
        for host, port in sorted(tcp):
            kind = _probe(f"{host}:{port}", reader, cluster["token"].encode(), cluster["gcs"], dashboard)
            kinds[kind] = kinds.get(kind, 0) + 1
        with open(os.path.join(cluster["session_dir"], ADDRESS_FILE)) as f:
            gcs_unix = "unix:" + os.path.realpath(json.load(f)["gcs_unix"])
        for path in sorted(unix):
            kind = "unix-" + _probe(
                "unix:" + os.path.realpath(path), reader, cluster["token"].encode(), gcs_unix, ""
            )
            kinds[kind] = kinds.get(kind, 0) + 1
        # Everything expected was found and probed: the gcs, the HTTP service, two nodes'
        # RPC and transfer ports, and core workers (this driver, the job's driver, workers).
        assert kinds.get("gcs") == 1 and kinds.get("http") == 1 and kinds.get("transfer") == 2, kinds
        assert kinds.get("rpc", 0) >= 2 + 3 and kinds.get("unix-rpc", 0) >= 2 + 3, kinds
        assert kinds.get("unix-gcs") == 1 and set(kinds) <= {
            "gcs",
            "http",
            "transfer",
            "rpc",
            "unix-rpc",
            "unix-gcs",
        }
        assert all(host in ("127.0.0.1", "::1") for host, _ in tcp), tcp  # loopback only
    finally:
        request(cluster, "POST", f"/api/jobs/{job}/stop")


def manta_cli(cluster, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANTA_AUTH_TOKEN": token or cluster["token"]}
    return subprocess.run(
        [sys.executable, "-m", "manta.cli.main", *args, "--address", cluster["url"]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_token_and_audit_commands(cluster, tmp_path) -> None:
    made = manta_cli(cluster, "token", "create", "--role", "read", "--name", "cli-viewer")
    assert made.returncode == 0, made.stderr
    viewer = made.stdout.strip().splitlines()[-1]
    assert viewer.startswith("mt_") and "not shown again" in made.stderr
    assert request(cluster, "GET", "/api/jobs/", token=viewer)[0] == 200
    listed = manta_cli(cluster, "token", "list")
    assert listed.returncode == 0 and "cli-viewer" in listed.stdout and viewer not in listed.stdout
    # Rotation: the successor works at once, the old one until it is revoked.
    rotated = manta_cli(cluster, "token", "rotate", "cli-viewer")
    assert rotated.returncode == 0, rotated.stderr
    successor = rotated.stdout.strip().splitlines()[-1]
    assert "keeps working until you revoke it" in rotated.stderr
    assert request(cluster, "GET", "/api/jobs/", token=successor)[0] == 200
    assert request(cluster, "GET", "/api/jobs/", token=viewer)[0] == 200
    old_id = viewer.split("_")[1]
    assert manta_cli(cluster, "token", "revoke", old_id).returncode == 0
    wait_until(lambda: request(cluster, "GET", "/api/jobs/", token=viewer)[0] == 401, 5, "the revocation")
    # The audit log, as text and as JSON lines; a read token may not see it.
    shown = manta_cli(cluster, "audit", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    events = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {"token_create", "token_rotate", "token_revoke"} <= {e["event"] for e in events}
    text = manta_cli(cluster, "audit", "--after", str(events[-2]["seq"]))
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 1
    refused = manta_cli(cluster, "audit", token=successor)
    assert refused.returncode == 1 and "needs the 'admin' role; your token has 'read'" in refused.stderr
    bad = manta_cli(cluster, "token", "create", "--role", "root")
    assert bad.returncode == 2 and "'root' is not one of" in bad.stderr
    missing = manta_cli(cluster, "token", "revoke", "no-such-token")
    assert missing.returncode == 1 and "no token has the id or active name" in missing.stderr


def test_a_flooding_token_is_slowed_alone(cluster) -> None:
    flooder = issue(cluster, "read", "flooder")
    calm = issue(cluster, "read", "calm")
    answers = [request(cluster, "GET", "/api/version", token=flooder) for _ in range(120)]
    statuses = [status for status, _ in answers]
    assert statuses[:40] == [200] * 40 and 429 in statuses
    # (Not the next request's: on a slow machine the bucket may have refilled by then.)
    refused = next(body for status, body in answers if status == 429)
    assert "too many requests" in refused["error"]
    assert request(cluster, "GET", "/api/version", token=calm)[0] == 200  # others are served
