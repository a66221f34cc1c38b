"""Starting, joining and stopping clusters; process hygiene; authentication.

Each test runs its driver as a separate process with its own MANTA_TMPDIR, so clusters
never see each other and a killed driver cannot take the test runner with it.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from manta.job_config import JobConfig
from tests.integration.conftest import run_driver
from tests.tmpfs import needs_unshare, run_on_tiny_tmpfs


@pytest.fixture
def tmpdir_env(tmp_path):
    return {"MANTA_TMPDIR": str(tmp_path / "sessions")}


def _wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [
            p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_init_starts_few_processes_and_shutdown_stops_them(tmpdir_env):
    result = run_driver(
        """
        import json, psutil, manta
        manta.init(num_cpus=2)
        @manta.remote
        def f(): return 1
        assert manta.get(f.remote()) == 1
        me = psutil.Process()
        started = [p.pid for p in me.children(recursive=True)]
        print(json.dumps(started))
        manta.shutdown()
        left = [p.pid for p in me.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
        print(json.dumps(left))
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    started, left = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    # gcs, node daemon, worker template and two prestarted workers.
    assert 3 <= len(started) <= 6, started
    assert left == []
    assert _wait_gone(started) == []


def test_killed_driver_leaves_no_orphans(tmpdir_env, tmp_path):
    code = textwrap.dedent(
        """
        import json, sys, time, psutil, manta
        ctx = manta.init(num_cpus=2)
        @manta.remote
        def busy(flag):
            open(flag, "w").close()
            time.sleep(60)
        flags = [f"{sys.argv[1]}/busy{i}" for i in range(2)]
        refs = [busy.remote(f) for f in flags]
        import os
        while not all(os.path.exists(f) for f in flags):
            time.sleep(0.01)
        print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]), flush=True)
        sockets = os.path.realpath(os.path.join(ctx.address_info["session_dir"], "sockets"))
        print(json.dumps([sockets, os.listdir(sockets)]), flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, **tmpdir_env}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        descendants = json.loads(proc.stdout.readline())
        sockets, listening = json.loads(proc.stdout.readline())
        assert len(descendants) >= 4  # gcs, node, template, workers
        assert {"gcs", "node"} <= set(listening)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(descendants) == [], "daemons or workers outlived their driver"
        # Nobody was left to clean up after them: each daemon removed its own socket and
        # its workers', and the last one out the (short, private) socket directory.
        assert not os.path.exists(sockets) or os.listdir(sockets) == [], os.listdir(sockets)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_init_twice_fails_unless_ignored(tmpdir_env):
    result = run_driver(
        """
        import manta
        ctx = manta.init(num_cpus=1)
        try:
            manta.init(num_cpus=1)
        except RuntimeError as e:
            print("error:", e)
        again = manta.init(ignore_reinit_error=True)
        print("same context:", again is ctx)
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    assert "Maybe you called manta.init twice by accident?" in result.stdout
    assert "ignore_reinit_error=True" in result.stdout
    assert "same context: True" in result.stdout


def test_first_api_call_starts_a_cluster_and_reinit_after_shutdown(tmpdir_env):
    result = run_driver(
        """
        import manta
        assert not manta.is_initialized()
        @manta.remote
        def f(x): return x + 1
        assert manta.get(f.remote(1)) == 2
        assert manta.is_initialized()
        manta.shutdown()
        assert not manta.is_initialized()
        assert manta.get(manta.put(5)) == 5
        manta.shutdown()
        print("ok")
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_auto_address_without_a_cluster_is_a_connection_error(tmpdir_env):
    result = run_driver(
        """
        import manta
        try:
            manta.init(address="auto")
        except ConnectionError as e:
            print("ConnectionError:", e)
        print("initialized:", manta.is_initialized())
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    assert "ConnectionError: Could not find any running Manta instance" in result.stdout
    assert "initialized: False" in result.stdout


def test_session_directory_has_logs_and_a_private_token(tmpdir_env):
    result = run_driver(
        """
        import manta
        ctx = manta.init(num_cpus=1)
        assert manta.get(manta.remote(lambda: 1).remote()) == 1
        print(ctx.address_info["session_dir"])
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    session_dir = result.stdout.strip().splitlines()[-1]
    assert session_dir.startswith(tmpdir_env["MANTA_TMPDIR"])
    token = os.path.join(session_dir, "token")
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
    logs = os.listdir(os.path.join(session_dir, "logs"))
    for name in ("gcs.err", "node.err", "worker-template.err"):
        assert name in logs
    assert any(n.startswith("worker-") and n.endswith(".out") for n in logs if n != "worker-template.out")


def test_wrong_token_is_refused_and_logged(tmpdir_env):
    result = run_driver(
        """
        import asyncio, manta
        from manta.exceptions import AuthenticationError
        from manta._private.rpc.transport import Dispatcher
        from manta._private.rpc.endpoints import connect
        ctx = manta.init(num_cpus=1)
        worker = manta._private.api.context.current_worker()

        async def attempt():
            try:
                await connect(worker.session.gcs_address, b"not-the-token", Dispatcher(), kind="cli",
                              max_frame_bytes=1 << 20)
            except AuthenticationError as e:
                return f"refused: {e}"
            return "accepted"

        # A flood of them: each is refused, the log stays bounded.
        for _ in range(60):
            asyncio.run(attempt())
        print(asyncio.run(attempt()))
        assert manta.get(manta.put(1)) == 1  # the gcs is still serving
        print(ctx.address_info["session_dir"])
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith("refused: the token is missing or wrong")
    with open(os.path.join(lines[-1], "logs", "gcs.err")) as f:
        log = f.read()
    assert "token is missing or wrong" in log
    assert 1 <= log.count("refused connection from") <= 20  # 61 refused, at most 20 lines a minute


def test_bad_runtime_env_fails_before_anything_starts(tmpdir_env):
    result = run_driver(
        """
        import psutil, manta
        for env in ({"env_vars": {"A": 1}}, {"conda": ["requests"]}, {"pip": {"pakages": []}}, {"bogus": 1}, "notadict"):
            try:
                manta.init(runtime_env=env)
            except (TypeError, ValueError) as e:
                print(type(e).__name__, e)
        print("children:", len(psutil.Process().children(recursive=True)))
        print("initialized:", manta.is_initialized())
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TypeError runtime_env['env_vars'] must be of type Dict[str, str]" in out
    assert "runtime_env['conda'] is not supported" in out
    assert "runtime_env['pip'] has unknown keys ['pakages']" in out
    assert "unknown runtime_env key 'bogus'" in out
    assert "TypeError runtime_env must be a dict" in out
    assert "children: 0" in out
    assert "initialized: False" in out


def test_runtime_env_and_namespace_reach_tasks(tmpdir_env, tmp_path):
    result = run_driver(
        """
        import os, manta
        manta.init(num_cpus=1, namespace="ns1", runtime_env={"env_vars": {"MANTA_TEST_VAR": "job"}})
        @manta.remote
        def read():
            return os.environ.get("MANTA_TEST_VAR"), manta.get_runtime_context().namespace
        @manta.remote(runtime_env={"env_vars": {"MANTA_TEST_VAR": "task"}})
        def read_own():
            return os.environ.get("MANTA_TEST_VAR")
        print(manta.get(read.remote()), manta.get(read_own.remote()))
        print(manta.get_runtime_context().namespace)
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    assert "('job', 'ns1') task" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "ns1"


def test_worker_output_streams_to_driver_unless_disabled(tmpdir_env):
    code = """
        import sys, manta
        manta.init(num_cpus=1, log_to_driver={flag})
        @manta.remote
        def talk():
            print("to stdout")
            print("to stderr", file=sys.stderr)
            print("no newline", end="")
            return 1
        @manta.remote
        def other():
            print("from other")
        manta.get(talk.remote())
        manta.get(other.options(name="renamed").remote())
        manta.shutdown()
    """
    on = run_driver(code.replace("{flag}", "True"), env=tmpdir_env)
    assert on.returncode == 0, on.stderr
    assert re.search(r"^\(talk pid=\d+, node=[0-9a-f]{8}\) to stdout$", on.stdout, re.M), on.stdout
    assert ") to stderr" in on.stderr and "(talk pid=" in on.stderr
    assert ") no newline" in on.stdout
    assert "(renamed pid=" in on.stdout and ") from other" in on.stdout
    assert "manta-task" not in on.stdout + on.stderr  # markers never reach the driver
    off = run_driver(code.replace("{flag}", "False"), env=tmpdir_env)
    assert off.returncode == 0, off.stderr
    assert "to stdout" not in off.stdout and "to stderr" not in off.stderr


def test_cli_start_status_join_stop(tmpdir_env):
    env = {**os.environ, **tmpdir_env}
    manta_cmd = [sys.executable, "-m", "manta.cli.main"]
    started = subprocess.run(
        [*manta_cmd, "start", "--head", "--port", "0", "--num-cpus", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert 'manta.init(address="auto")' in started.stdout
        again = subprocess.run(
            [*manta_cmd, "start", "--head", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode != 0 and "already runs on this host" in again.stderr
        joined = run_driver(
            """
            import manta
            manta.init(address="auto")
            @manta.remote
            def f(): return "joined"
            print(manta.get(f.remote()), manta.cluster_resources()["CPU"])
            manta.shutdown()
            """,
            env=tmpdir_env,
        )
        assert joined.returncode == 0, joined.stderr
        assert "joined 2.0" in joined.stdout
        # Without an address a driver joins the running cluster (as in Ray); "local"
        # always starts a private one.
        sessions = run_driver(
            """
            import manta
            print(manta.init().address_info["session_dir"])
            manta.shutdown()
            print(manta.init("local", num_cpus=1).address_info["session_dir"])
            manta.shutdown()
            """,
            env=tmpdir_env,
        )
        assert sessions.returncode == 0, sessions.stderr
        joined_dir, local_dir = sessions.stdout.split()
        with open(os.path.join(tmpdir_env["MANTA_TMPDIR"], "manta_current_cluster")) as f:
            assert joined_dir == f.read().strip()
        assert local_dir != joined_dir
        status = subprocess.run(
            [*manta_cmd, "status", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert len(report["nodes"]) == 1 and report["nodes"][0]["alive"]
        assert report["nodes"][0]["total"]["CPU"] == 2.0
    finally:
        stopped = subprocess.run([*manta_cmd, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the Manta node" in stopped.stdout
    bad = subprocess.run(
        [*manta_cmd, "start", "--head", "--resources", "{not json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "--resources must be JSON" in bad.stderr


def test_last_output_reaches_the_driver_before_shutdown(tmpdir_env):
    result = run_driver(
        """
        import manta
        manta.init(num_cpus=1)
        @manta.remote
        def say(i):
            print("line", i)
        for i in range(3):
            manta.get(say.remote(i))
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    for i in range(3):
        assert f") line {i}" in result.stdout


def test_driver_exiting_with_running_tasks_is_quiet_and_leaves_nothing(tmpdir_env, tmp_path):
    result = run_driver(
        f"""
        import json, os, time, psutil, manta
        manta.init(num_cpus=2)
        @manta.remote
        def busy(flag):
            open(flag, "w").close()
            time.sleep(60)
        flags = [os.path.join({str(tmp_path)!r}, f"f{{i}}") for i in range(2)]
        refs = [busy.remote(f) for f in flags]
        while not all(os.path.exists(f) for f in flags):
            time.sleep(0.01)
        print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]))
        # exits here without shutdown(): the atexit hook stops the cluster
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    assert "retries remain" not in result.stderr
    started = json.loads(result.stdout.strip().splitlines()[-1])
    assert _wait_gone(started) == []


def test_a_crashed_node_daemon_does_not_leak_its_shared_memory(tmpdir_env):
    result = run_driver(
        """
        import os, signal, time, manta
        ctx = manta.init(num_cpus=1)
        worker = manta._private.api.context.current_worker()
        store = worker.session.arena_path
        ref = manta.put(b"x" * 1_000_000)  # in the arena
        assert os.path.exists(store)
        pid = manta._private.api.context._process.cluster.procs["node"].pid
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        manta.shutdown()
        print(store, os.path.exists(store))
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    store, exists = result.stdout.split()[-2:]
    assert store.startswith("/dev/shm/")
    assert exists == "False"


@needs_unshare
def test_a_small_dev_shm_falls_back_to_a_disk_store_with_one_warning(tmpdir_env):
    code = textwrap.dedent(
        """
        import manta
        manta.init(num_cpus=1, object_store_memory=200_000_000)
        worker = manta._private.api.context.current_worker()
        print("arena:", worker.session.arena_path)
        big = b"x" * 100_000_000  # more than /dev/shm holds
        assert manta.get(manta.put(big)) == big
        print("big put ok")
        manta.shutdown()
        """
    )
    # A private mount namespace with a 64 MiB /dev/shm, as Docker gives containers.
    result = run_on_tiny_tmpfs(Path("/dev/shm"), "64m", code, timeout=120, env=tmpdir_env)
    assert result.returncode == 0, result.stderr
    assert "big put ok" in result.stdout
    arena = result.stdout.split("arena:", 1)[1].split()[0]
    assert not arena.startswith("/dev/shm") and arena.startswith(tmpdir_env["MANTA_TMPDIR"])
    assert result.stderr.count("--shm-size") == 1, result.stderr


def test_job_config_code_search_path_namespace_and_runtime_env(tmp_path):
    code = tmp_path / "a b"  # a path with a space, as Ray's test has
    code.mkdir()
    (code / "helper_for_job_config.py").write_text("def answer():\n    return 42\n")
    result = run_driver(
        f"""
        import os
        import manta
        from manta.job_config import JobConfig

        config = JobConfig(
            code_search_path=[{str(code)!r}],
            ray_namespace="from-job-config",
            runtime_env={{"env_vars": {{"FROM_JOB_CONFIG": "yes"}}}},
        )
        manta.init(num_cpus=1, job_config=config)

        @manta.remote
        def probe():
            import helper_for_job_config  # found on the job's code search path

            return helper_for_job_config.answer(), os.environ.get("FROM_JOB_CONFIG")

        print("RESULT", manta.get(probe.remote()), manta.get_runtime_context().namespace)
        manta.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert "RESULT (42, 'yes') from-job-config" in result.stdout
    with pytest.raises(TypeError, match="code search path"):
        JobConfig(code_search_path="not-a-list")  # type: ignore[arg-type]


def test_a_driver_and_its_workers_may_open_as_many_files_as_the_hard_limit_allows(tmpdir_env):
    # As in Ray: a driver started with a low soft limit on open files (1,024 is common) has
    # it raised at init, and so have its daemons and workers.
    result = run_driver(
        """
        import json, resource, manta
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        manta.init(num_cpus=1)

        @manta.remote
        def limit():
            return resource.getrlimit(resource.RLIMIT_NOFILE)

        driver = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(json.dumps({"driver": driver, "worker": manta.get(limit.remote()), "hard": hard}))
        manta.shutdown()
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    expected = seen["hard"] if seen["hard"] != resource.RLIM_INFINITY else 1 << 20
    assert seen["driver"] == [expected, seen["hard"]]
    assert seen["worker"] == [expected, seen["hard"]]


def test_the_collector_runs_less_often_while_connected_and_as_before_after(tmpdir_env):
    # A driver and its workers raise the cycle collector's first threshold while connected
    # (common/gc_pace.py); shutdown puts the driver's back, and a program's own higher one
    # is kept.
    result = run_driver(
        """
        import gc, json, manta
        before = gc.get_threshold()
        manta.init(num_cpus=1)

        @manta.remote
        def thresholds():
            return gc.get_threshold()

        during, worker = gc.get_threshold(), manta.get(thresholds.remote())
        manta.shutdown()
        after = gc.get_threshold()
        gc.set_threshold(50_000, 10, 10)
        manta.init(num_cpus=1)
        own = gc.get_threshold()
        manta.shutdown()
        print(json.dumps([before, during, worker, after, own]))
        """,
        env=tmpdir_env,
    )
    assert result.returncode == 0, result.stderr
    before, during, worker, after, own = json.loads(result.stdout.strip().splitlines()[-1])
    raised = [7000, *before[1:]] if 0 < before[0] < 7000 else before  # Python's own: 700
    assert during == worker == raised
    assert after == before
    assert own == [50_000, 10, 10]
