"""A mutual-TLS cluster made the way the README says: `manta cert` makes a CA and node
certificates, `manta start --head`/`--address` with --tls-*, a driver with MANTA_TLS_*
runs tasks on both nodes and moves a large object between them; a node without a
certificate of the cluster's CA cannot join, a plaintext client is refused clearly on
both sides, and the jobs API answers over https to a client that checks its certificate."""

from __future__ import annotations

import http.client
import os
import ssl
import urllib.parse
import urllib.request

import pytest

from tests.integration.conftest import run_driver
from tests.integration.test_cli_cluster import hosts, manta_cli, session_info  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def pki(tmp_path):
    pki = tmp_path / "pki"
    made = manta_cli(["cert", "create-ca", "--out-dir", str(pki / "ca")], str(tmp_path))
    assert made.returncode == 0, made.stderr
    ca, ca_key = str(pki / "ca" / "ca.crt"), str(pki / "ca" / "ca.key")
    for who in ("head", "worker"):
        node = manta_cli(
            [
                "cert",
                "create-node",
                "--ca-cert",
                ca,
                "--ca-key",
                ca_key,
                "--ip",
                "127.0.0.1",
                "--dns",
                "localhost",
                "--out-dir",
                str(pki / who),
            ],
            str(tmp_path),
        )
        assert node.returncode == 0, node.stderr
    assert oct(os.stat(ca_key).st_mode & 0o777) == "0o600"
    return {
        who: {
            "MANTA_TLS_CA": ca,
            "MANTA_TLS_CERT": str(pki / who / "node.crt"),
            "MANTA_TLS_KEY": str(pki / who / "node.key"),
        }
        for who in ("head", "worker")
    }


def test_a_mutual_tls_cluster(hosts, pki) -> None:  # noqa: F811 - the fixture
    head_dir, worker_dir = hosts
    tls = pki["head"]
    started = manta_cli(
        [
            "start",
            "--head",
            "--port",
            "0",
            "--num-cpus",
            "1",
            "--dashboard-port",
            "0",
            "--tls-ca",
            tls["MANTA_TLS_CA"],
            "--tls-cert",
            tls["MANTA_TLS_CERT"],
            "--tls-key",
            tls["MANTA_TLS_KEY"],
        ],
        head_dir,
    )
    assert started.returncode == 0, started.stderr
    assert "TLS is on" in started.stdout and "https://" in started.stdout
    session, info = session_info(head_dir)
    address = info["gcs_address"]
    with open(os.path.join(session, "token")) as f:
        token = f.read().strip()

    # Without a certificate of the cluster's CA, a node cannot join; the head logs why.
    refused = manta_cli(
        ["start", "--address", address, "--num-cpus", "1"], worker_dir, MANTA_AUTH_TOKEN=token
    )
    assert refused.returncode != 0 and "requires TLS" in refused.stderr, refused.stderr
    with open(os.path.join(session, "logs", "gcs.err")) as f:
        assert "this server requires TLS" in f.read()

    joined = manta_cli(
        ["start", "--address", address, "--num-cpus", "1", "--resources", '{"w": 1}'],
        worker_dir,
        MANTA_AUTH_TOKEN=token,
        **pki["worker"],
    )
    assert joined.returncode == 0, joined.stderr
    _, winfo = session_info(worker_dir)

    # A driver on the head's host: tasks on both nodes, and 64 MiB made on the worker node
    # read here (an object stream between the nodes, over TLS).
    driver = run_driver(
        """
        import manta, numpy as np
        manta.init(address="auto")
        @manta.remote
        def where():
            return manta.get_runtime_context().get_node_id()
        @manta.remote(resources={"w": 1})
        def big():
            return np.arange(8 * 1024 * 1024, dtype=np.int64)
        print(manta.get(where.options(resources={"w": 1}).remote()))
        print(manta.get(where.remote()))
        array = manta.get(big.remote())
        print(int(array.sum()) == int(np.arange(8 * 1024 * 1024, dtype=np.int64).sum()))
        manta.shutdown()
        """,
        env={"MANTA_TMPDIR": head_dir, **tls},
        timeout=120,
    )
    assert driver.returncode == 0, driver.stderr
    assert driver.stdout.split() == [winfo["node_id"], info["node_id"], "True"]

    # A plaintext client of the gcs's TCP port is told TLS is needed.
    plain = run_driver(
        f"""
        from manta._private.api.gcs_client import GcsClient
        try:
            GcsClient("{address}", b"{token}")
        except Exception as e:
            print(type(e).__name__, e)
        """,
        env={"MANTA_TMPDIR": head_dir},
    )
    assert plain.stdout.startswith("AuthenticationError this server requires TLS"), (
        plain.stdout + plain.stderr
    )

    # The jobs API is https; a client that checks the cluster's CA is answered.
    context = ssl.create_default_context(cafile=tls["MANTA_TLS_CA"])
    request = urllib.request.Request(
        f"https://{info['dashboard_url']}/api/version", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as reply:
        assert reply.status == 200
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
    # The web UI's session cookie is Secure under TLS (sent over https only).
    host, port = info["dashboard_url"].rsplit(":", 1)
    login = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    try:
        form = urllib.parse.urlencode({"token": token})
        login.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        answer = login.getresponse()
        assert answer.status == 303 and "; Secure" in answer.headers["Set-Cookie"], answer.headers
    finally:
        login.close()
    # The CLI and the job client speak https with the cluster's certificates; the job's
    # driver (started by the cluster) has them too, and its task runs on the other node.
    url = f"https://{info['dashboard_url']}"
    job = manta_cli(
        [
            "job",
            "submit",
            "--address",
            url,
            "--",
            "python",
            "-c",
            "import manta; manta.init(); print('answer', manta.get(manta.remote(resources={'w': 1})(lambda: 42).remote()))",
        ],
        head_dir,
        MANTA_AUTH_TOKEN=token,
        **tls,
    )
    assert job.returncode == 0 and "answer 42" in job.stdout, job.stdout + job.stderr
    made = manta_cli(
        ["token", "create", "--role", "read", "--address", url], head_dir, MANTA_AUTH_TOKEN=token, **tls
    )
    assert made.returncode == 0 and made.stdout.strip().splitlines()[-1].startswith("mt_"), made.stderr

    # A remote driver (no node on its side) over the client port: with the cluster's CA and
    # a certificate of it, it runs a task on the worker node; without TLS settings it is
    # told TLS is needed.
    laptop = os.path.join(head_dir, "laptop")
    os.makedirs(laptop)
    remote = """
        import manta
        try:
            manta.init("{address}")
            print("answer", manta.get(manta.remote(resources={{"w": 1}})(lambda: 42).remote()))
        except Exception as e:
            print(type(e).__name__, e)
        """
    env = {"MANTA_TMPDIR": laptop, "MANTA_AUTH_TOKEN": token}
    over_tls = run_driver(
        remote.format(address=info["client_address"]), env={**env, **pki["worker"]}, timeout=120
    )
    assert over_tls.stdout.split() == ["answer", "42"], over_tls.stdout + over_tls.stderr
    plain = run_driver(remote.format(address=info["client_address"]), env=env, timeout=120)
    assert plain.stdout.startswith("AuthenticationError this server requires TLS"), (
        plain.stdout + plain.stderr
    )
