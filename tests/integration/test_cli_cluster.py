"""`manta start --head` / `manta start --address` / `manta status` / `manta stop` with two
"hosts" on this machine (each its own MANTA_TMPDIR), and the ways joining goes wrong."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.integration.conftest import run_driver
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(180)

MANTA = [sys.executable, "-m", "manta.cli.main"]


def manta_cli(args: list[str], tmpdir: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MANTA_TMPDIR": tmpdir, "MANTA_GCS_RECONNECT_TIMEOUT_S": "2", **env}
    return subprocess.run([*MANTA, *args], env=full, capture_output=True, text=True, timeout=90)


def session_info(tmpdir: str) -> tuple[str, dict]:
    [path] = glob.glob(os.path.join(tmpdir, "session_*", "address.json"))
    with open(path) as f:
        return os.path.dirname(path), json.load(f)


def daemon_pids(tmpdir: str) -> list[int]:
    pids = []
    for path in glob.glob(os.path.join(tmpdir, "session_*", "address.json")):
        with open(path) as f:
            pids += json.load(f)["pids"].values()
    return pids


@pytest.fixture
def hosts(tmp_path):
    """Two host directories; whatever `manta start` left running is stopped at the end."""
    head, worker = str(tmp_path / "head"), str(tmp_path / "worker")
    yield head, worker
    for tmpdir in (worker, head):
        pids = daemon_pids(tmpdir)
        manta_cli(["stop"], tmpdir)
        wait_until(lambda pids=pids: not any(psutil.pid_exists(p) for p in pids), what="the daemons to stop")


def test_a_node_joins_a_head_and_runs_its_tasks(hosts) -> None:
    head_dir, worker_dir = hosts
    started = manta_cli(["start", "--head", "--port", "0", "--num-cpus", "1", "--labels", "zone=h"], head_dir)
    assert started.returncode == 0, started.stderr
    session, info = session_info(head_dir)
    address = info["gcs_address"]
    assert f"manta start --address {address}" in started.stdout
    with open(os.path.join(session, "token")) as f:
        token = f.read().strip()
    assert oct(os.stat(os.path.join(session, "token")).st_mode & 0o777) == "0o600"

    joined = manta_cli(
        ["start", "--address", address, "--num-cpus", "1", "--resources", '{"w": 2}', "--labels", "zone=w"],
        worker_dir,
        MANTA_AUTH_TOKEN=token,
    )
    assert joined.returncode == 0, joined.stderr
    assert "Joined the Manta cluster" in joined.stdout
    _wsession, winfo = session_info(worker_dir)

    status = manta_cli(["status", "--json"], head_dir)
    assert status.returncode == 0, status.stderr
    nodes = {n["node_id"]: n for n in json.loads(status.stdout)["nodes"]}
    assert nodes[info["node_id"]]["head"] and not nodes[winfo["node_id"]]["head"]
    assert nodes[winfo["node_id"]]["total"]["w"] == 2.0 and nodes[winfo["node_id"]]["labels"] == {"zone": "w"}
    human = manta_cli(["status"], worker_dir)  # from the joined host too
    assert human.returncode == 0 and "(head)" in human.stdout, human.stderr

    # A driver on the worker's host attaches to its node; its tasks run anywhere.
    driver = run_driver(
        """
        import manta
        manta.init(address="auto")
        @manta.remote
        def where():
            return manta.get_runtime_context().get_node_id()
        print(manta.get_runtime_context().get_node_id())
        print(manta.get(where.options(resources={"w": 1}).remote()))
        print(manta.get(where.options(label_selector={"zone": "h"}).remote()))
        manta.shutdown()
        """,
        env={"MANTA_TMPDIR": worker_dir},
    )
    assert driver.returncode == 0, driver.stderr
    assert driver.stdout.split() == [winfo["node_id"], winfo["node_id"], info["node_id"]]

    stopped = manta_cli(["stop"], worker_dir)
    assert "stopped the Manta node" in stopped.stdout

    def worker_alive() -> bool:
        report = json.loads(manta_cli(["status", "--json"], head_dir).stdout)
        return {n["node_id"]: n["alive"] for n in report["nodes"]}[winfo["node_id"]]

    wait_until(lambda: not worker_alive(), what="the head to see the stopped node dead")


def test_joining_with_a_wrong_token_is_refused_on_both_sides(hosts) -> None:
    head_dir, worker_dir = hosts
    assert manta_cli(["start", "--head", "--port", "0"], head_dir).returncode == 0
    session, info = session_info(head_dir)
    joined = manta_cli(
        ["start", "--address", info["gcs_address"]], worker_dir, MANTA_AUTH_TOKEN="not-the-token"
    )
    assert joined.returncode != 0
    assert "token is missing or wrong" in joined.stderr
    # The refused node left nothing behind: its shared-memory arena is gone with it.
    for refused in glob.glob(os.path.join(worker_dir, "session_*")):
        assert not os.path.exists(f"/dev/shm/manta_{os.path.basename(refused)}.arena")
    with open(os.path.join(session, "logs", "gcs.err")) as f:
        assert "refused connection from 127.0.0.1:" in f.read()
    missing = manta_cli(["start", "--address", info["gcs_address"]], worker_dir, MANTA_AUTH_TOKEN="")
    assert missing.returncode != 0 and "MANTA_AUTH_TOKEN" in missing.stderr


def test_joining_a_head_that_is_not_there_fails_after_retrying(hosts) -> None:
    _head_dir, worker_dir = hosts
    joined = manta_cli(["start", "--address", "127.0.0.1:1"], worker_dir, MANTA_AUTH_TOKEN="x")
    assert joined.returncode != 0
    assert "cannot connect to 127.0.0.1:1" in joined.stderr and "retried for 2 s" in joined.stderr


def test_a_taken_port_is_named_with_its_process(hosts) -> None:
    head_dir, other_dir = hosts
    assert manta_cli(["start", "--head", "--port", "0"], head_dir).returncode == 0
    _session, info = session_info(head_dir)
    port = info["gcs_address"].rsplit(":", 1)[1]
    clash = manta_cli(["start", "--head", "--port", port], other_dir)
    assert clash.returncode != 0
    assert (
        f"cannot listen on 127.0.0.1:{port}: the port is already in use by pid {info['pids']['gcs']}"
        in clash.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--head", "--resources", "{not json"], "--resources must be JSON"),
        (["--head", "--resources", '{"disk": -1}'], "must be a non-negative number"),
        (["--head", "--resources", "[1]"], "JSON object"),
        (["--head", "--labels", "novalue"], "k=v pairs"),
        (["--head", "--address", "127.0.0.1:1"], "give --head to start a cluster, or --address"),
        ([], "give --head to start a cluster, or --address"),
        (["--head", "--storage", "mysql://x"], "sqlite:///"),
        (["--head", "--no-include-dashboard", "--client-port", "0"], "drop --no-include-dashboard"),
        (["--head", "--token-file", "/nonexistent/token"], "cannot read the token file"),
        (["--address", "127.0.0.1:1", "--autoscaling-config", "a.yaml"], "--autoscaling-config is for the head"),
    ],
)
def test_bad_start_arguments_are_refused_before_anything_starts(hosts, args, message) -> None:
    head_dir, _ = hosts
    result = manta_cli(["start", "--port", "0", *args], head_dir)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert daemon_pids(head_dir) == []


def test_a_head_takes_its_token_from_a_file_and_refuses_a_weak_one(hosts, tmp_path) -> None:
    """How a deployment keeps the cluster token in a Secret: the head uses the file's."""
    head_dir, _ = hosts
    weak = tmp_path / "weak"
    weak.write_text("hunter2\n")
    refused = manta_cli(["start", "--head", "--port", "0", "--token-file", str(weak)], head_dir)
    assert refused.returncode != 0 and "32 characters or more" in refused.stderr
    assert daemon_pids(head_dir) == []
    strong = tmp_path / "strong"
    strong.write_text("a" * 40 + "\n")
    started = manta_cli(["start", "--head", "--port", "0", "--token-file", str(strong)], head_dir)
    assert started.returncode == 0, started.stderr
    session, _ = session_info(head_dir)
    with open(os.path.join(session, "token")) as f:
        assert f.read() == "a" * 40


@pytest.mark.xfail(
    strict=False,
    reason="the head sometimes does not stop within 60 s of Ctrl-C after its gcs was restarted: "
    "3 of 4 full runs of the README's test command in a fresh venv on 2026-12-07, never alone or "
    "in a partial run; cause not found yet (the test kills the head by pid when it happens)",
)
def test_a_blocking_head_with_durable_storage_restarts_its_gcs(hosts, tmp_path) -> None:
    head_dir, _ = hosts
    env = {**os.environ, "MANTA_TMPDIR": head_dir}
    args = [
        "start",
        "--head",
        "--port",
        "0",
        "--num-cpus",
        "1",
        "--storage",
        f"sqlite:///{tmp_path}/gcs.db",
        "--block",
    ]
    head = subprocess.Popen(
        [*MANTA, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: glob.glob(os.path.join(head_dir, "session_*", "address.json")), what="the head to start"
        )
        _session, info = session_info(head_dir)
        first_gcs = info["pids"]["gcs"]
        os.kill(first_gcs, signal.SIGKILL)
        wait_until(
            lambda: session_info(head_dir)[1]["pids"]["gcs"] != first_gcs,
            timeout=30,
            what="the gcs to be restarted",
        )
        driver = run_driver(
            """
            import manta
            manta.init(address="auto")
            @manta.remote
            def f():
                return "after the restart"
            print(manta.get(f.remote()))
            manta.shutdown()
            """,
            env={"MANTA_TMPDIR": head_dir},
        )
        assert driver.returncode == 0, driver.stderr
        assert "after the restart" in driver.stdout
    finally:
        head.send_signal(signal.SIGINT)  # Ctrl-C: the blocking head stops its node
        try:
            out, err = head.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()  # by its pid (the fixture stops its daemons), and its pipes closed
            out, err = head.communicate()
            pytest.fail(f"the head did not stop within 60 s of Ctrl-C; stdout: {out!r}; stderr: {err!r}")
    assert "starting it again from its storage" in err
    assert not any(psutil.pid_exists(p) for p in daemon_pids(head_dir))


_WAITING_DRIVER = """
import sys, manta
manta.init(num_cpus=1)
ref = manta.put(b"x" * 4096)
print("ready", manta.get_runtime_context().get_node_id(), flush=True)
sys.stdin.read()  # until the test closes our stdin
manta.shutdown()
"""


def test_status_and_memory_find_a_cluster_that_a_driver_started(tmp_path) -> None:
    # As `ray status` finds the cluster of a `ray.init()`: the newest one on this host,
    # reached with the token in its session directory.
    tmpdir = str(tmp_path / "sessions")
    env = {k: v for k, v in os.environ.items() if k not in ("MANTA_ADDRESS", "MANTA_AUTH_TOKEN")}
    driver = subprocess.Popen(
        [sys.executable, "-c", _WAITING_DRIVER],
        env={**env, "MANTA_TMPDIR": tmpdir},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = driver.stdout.readline().split()
        assert line[:1] == ["ready"], line
        node_id = line[1]
        session, _info = session_info(tmpdir)
        assert oct(os.stat(os.path.join(session, "token")).st_mode & 0o777) == "0o600"

        status = manta_cli(["status", "--json"], tmpdir)
        assert status.returncode == 0, status.stderr
        [node] = json.loads(status.stdout)["nodes"]
        assert node["node_id"] == node_id and node["head"] and node["total"]["CPU"] == 1.0
        memory = manta_cli(["memory", "--json"], tmpdir)
        assert memory.returncode == 0, memory.stderr
        [report] = json.loads(memory.stdout)
        assert report["node_id"] == node_id
        assert any(row["owner_pid"] == driver.pid for row in report["rows"])  # the driver's put
        human = manta_cli(["memory"], tmpdir)
        assert human.returncode == 0 and str(driver.pid) in human.stdout, human.stderr
    finally:
        driver.stdin.close()
        try:
            driver.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait()
        driver.stdout.close()
    gone = manta_cli(["status"], tmpdir)
    assert gone.returncode != 0 and "no Manta cluster is running" in gone.stderr


def test_the_jobs_seed_scenario(hosts) -> None:
    """README: start a head, then from another shell submit the Monte Carlo example as a
    job, inline and as a working_dir; the CLI shows the submission, progress, the estimate
    and the success line, and exits 0."""
    head_dir, _ = hosts
    started = manta_cli(["start", "--head", "--port", "0", "--num-cpus", "2"], head_dir)
    assert started.returncode == 0, started.stderr
    _session, info = session_info(head_dir)
    assert f"Dashboard: open http://{info['dashboard_url']} and log in" in started.stdout
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
    with open(os.path.join(examples, "monte_carlo_pi.py")) as f:
        source = f.read()
    env = {"MANTA_ADDRESS": f"http://{info['dashboard_url']}"}
    for args, cwd in (
        (["job", "submit", "--", "python", "-c", source], None),
        (["job", "submit", "--working-dir", ".", "--", "python", "monte_carlo_pi.py"], examples),
    ):
        full = {**os.environ, "MANTA_TMPDIR": head_dir, **env}
        done = subprocess.run([*MANTA, *args], env=full, capture_output=True, text=True, timeout=120, cwd=cwd)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "submitted successfully" in out and "Progress: 100%" in out
        assert "Estimated value of π is: 3.1" in out and "succeeded" in out.splitlines()[-2]


def test_a_driver_with_the_wrong_token_is_told_so_and_nothing_else(hosts) -> None:
    head_dir, _ = hosts
    assert manta_cli(["start", "--head", "--port", "0", "--no-include-dashboard"], head_dir).returncode == 0
    code = "import manta\ntry:\n    manta.init(address='auto')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    env = {**os.environ, "MANTA_TMPDIR": head_dir, "MANTA_AUTH_TOKEN": "wrong"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("AuthenticationError the token is missing or wrong"), result.stdout
    assert "the cluster is gone" not in result.stderr and "not running" not in result.stderr, result.stderr


def test_the_token_never_appears_on_a_command_line(hosts) -> None:
    """Every local user can read process command lines: a node joined with MANTA_AUTH_TOKEN
    set must not pass it on to its daemons or workers there."""
    head_dir, worker_dir = hosts
    assert manta_cli(["start", "--head", "--port", "0"], head_dir).returncode == 0
    session, info = session_info(head_dir)
    with open(os.path.join(session, "token")) as f:
        token = f.read().strip()
    joined = manta_cli(
        ["start", "--address", info["gcs_address"], "--num-cpus", "1"], worker_dir, MANTA_AUTH_TOKEN=token
    )
    assert joined.returncode == 0, joined.stderr
    pids = daemon_pids(head_dir) + daemon_pids(worker_dir)
    procs = [psutil.Process(p) for p in pids]
    everything = procs + [c for p in procs for c in p.children(recursive=True)]
    assert len(everything) >= 6
    for proc in everything:
        assert token not in " ".join(proc.cmdline()), proc.cmdline()[:3]


def test_stop_frees_the_arena_of_a_node_that_was_killed(hosts) -> None:
    head_dir, _ = hosts
    assert manta_cli(["start", "--head", "--port", "0", "--num-cpus", "1"], head_dir).returncode == 0
    _, info = session_info(head_dir)
    assert os.path.exists(info["arena_path"])
    os.kill(info["pids"]["node"], signal.SIGKILL)  # a crash: it cannot remove its own
    wait_until(
        lambda: (
            not psutil.pid_exists(info["pids"]["node"])
            or psutil.Process(info["pids"]["node"]).status() == psutil.STATUS_ZOMBIE
        )
    )
    assert manta_cli(["stop"], head_dir).returncode == 0
    assert not os.path.exists(info["arena_path"])
